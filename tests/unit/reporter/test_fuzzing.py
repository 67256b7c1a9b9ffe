"""Property-based requests generated from the OpenAPI document (schemathesis) find no 5xx.

The reporter runs on a loopback port in a thread of its own, because schemathesis sends its
requests synchronously. Valid requests must also answer exactly what the document says (status,
content type, body schema); invalid ones must never make the server fail.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reporter import openapi
from reporter.app import create_app
from reporter.settings import ReporterSettings
from shared.core.clock import fixed
from shared.regions.catalog import RegionCatalog
from shared.settings import CarbonSettings
from tests.unit.reporter.cluster import NOW, FixedSnapshot
from tests.unit.reporter.conftest import demo_cluster, demo_snapshot

SCHEMA = schemathesis.openapi.from_dict(openapi.document())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
# Only query parameters can be made invalid (a path segment is any non-empty string).
WITH_QUERY = sorted(
    label
    for label, op in OPERATIONS.items()
    if any(p.get("in") == "query" for p in op.definition.raw.get("parameters", []))
)


@pytest.fixture(scope="module")
def live_reporter() -> Iterator[str]:
    app = create_app(
        ReporterSettings(carbon=CarbonSettings(extra_regions=("eu-north-1",))),
        snapshot_source=FixedSnapshot(demo_snapshot()),
        inventory=demo_cluster(),
        catalog=RegionCatalog.load(),
        clock=fixed(NOW),
    )
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    host, port = runner.addresses[0][:2]
    thread = threading.Thread(target=loop.run_forever, name="reporter-under-test", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def test_every_documented_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) == 10


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_valid_requests_answer_what_the_document_says(live_reporter: str, label: str) -> None:
    operation = OPERATIONS[label]

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=live_reporter, timeout=10)
        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    check()


def test_operations_with_query_parameters_are_fuzzed_with_invalid_values_too() -> None:
    assert [label.rsplit("/", 1)[-1] for label in WITH_QUERY] == ["{region}", "nodes", "regions"]


@pytest.mark.parametrize("label", WITH_QUERY)
def test_invalid_requests_never_make_the_server_fail(live_reporter: str, label: str) -> None:
    operation = OPERATIONS[label]

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=live_reporter, timeout=10)
        case.validate_response(response, checks=[not_a_server_error])
        (content_type,) = response.headers["content-type"]
        assert content_type.startswith(("application/json", "text/plain"))

    check()
