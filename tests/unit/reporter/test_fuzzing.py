"""Property-based requests generated from the OpenAPI document (schemathesis) find no 5xx.

The reporter runs on a loopback port in a thread of its own, because schemathesis sends its
requests synchronously. Valid requests must also answer exactly what the document says (status,
content type, body schema); invalid ones must never make the server fail.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reporter import openapi
from reporter.app import create_app
from reporter.history.store import HistoryStore
from reporter.settings import ReporterSettings
from shared.core.clock import fixed
from shared.http_errors import JsonErrorRunner
from shared.regions.catalog import RegionCatalog
from shared.settings import CarbonSettings
from tests.unit.reporter.cluster import NOW, FixedSnapshot
from tests.unit.reporter.conftest import demo_cluster, demo_snapshot

SCHEMA_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
"""Examples per operation: 40 in the suite, ``FUZZ_EXAMPLES`` under ``make fuzz``."""
SCHEMA = schemathesis.openapi.from_dict(openapi.document())
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
# Only query parameters can be made invalid (a path segment is any non-empty string).
WITH_QUERY = sorted(
    label
    for label, op in OPERATIONS.items()
    if any(p.get("in") == "query" for p in op.definition.raw.get("parameters", []))
)


@pytest.fixture(scope="module")
def live_reporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    history = tmp_path_factory.mktemp("history") / "history.db"
    app = create_app(
        ReporterSettings(carbon=CarbonSettings(extra_regions=("eu-north-1",))),
        snapshot_source=FixedSnapshot(demo_snapshot()),
        inventory=demo_cluster(),
        catalog=RegionCatalog.load(),
        clock=fixed(NOW),
        history=HistoryStore.open(str(history)),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="reporter-under-test", daemon=True)
    thread.start()
    runner = JsonErrorRunner(app, service="reporter")

    def on_server_thread(coroutine: Coroutine[Any, Any, Any]) -> Any:
        # Everything runs on the server's own thread: the history's database connections are
        # bound to the thread that opened them.
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    on_server_thread(runner.setup())
    on_server_thread(web.TCPSite(runner, "127.0.0.1", 0).start())
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        on_server_thread(runner.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_every_documented_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) == 15


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_valid_requests_answer_what_the_document_says(live_reporter: str, label: str) -> None:
    operation = OPERATIONS[label]

    @settings(
        max_examples=SCHEMA_EXAMPLES,
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
    assert [label.rsplit("/", 1)[-1] for label in WITH_QUERY] == [
        "{region}",
        "history",
        "nodes",
        "regions",
        "report",
    ]


@pytest.mark.parametrize("label", WITH_QUERY)
def test_invalid_requests_never_make_the_server_fail(live_reporter: str, label: str) -> None:
    operation = OPERATIONS[label]

    @settings(
        max_examples=SCHEMA_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def check(case: schemathesis.Case) -> None:
        response = case.call(base_url=live_reporter, timeout=10)
        case.validate_response(response, checks=[not_a_server_error, content_type_conformance])
        # An unknown extra parameter is ignored, so a CSV report may still be a success; every
        # refusal is the JSON error.
        if response.status_code >= 400:
            assert response.headers["content-type"][0].startswith("application/json")

    check()


def _raw(base_url: str, request: bytes) -> tuple[int, dict[str, object]]:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"application/json" in head.lower()
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/v1/sustainability/regions?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n"
        b"Connection: close\r\n\r\n0123456789",
    ],
    ids=[
        "long-request-line",
        "long-header",
        "malformed-header",
        "broken-chunking",
        "chunked-and-a-length",
        "gzip-that-is-not-gzip",
    ],
)
def test_what_the_http_parser_rejects_is_answered_with_the_json_error(
    live_reporter: str, request_bytes: bytes
) -> None:
    status, body = _raw(live_reporter, request_bytes)
    assert 400 <= status < 500
    assert set(body) == {"error"}


def _token(payload: bytes) -> str:
    return "n1." + base64.urlsafe_b64encode(payload).decode().rstrip("=")


continue_tokens = st.one_of(
    st.integers(1, 1500).map(lambda depth: _token(b"[" * depth + b"]" * depth)),
    st.integers(1, 700).map(lambda d: _token(b'{"after":' * d + b'"x"' + b"}" * d)),
    st.binary(max_size=1500).map(_token),
    st.text(max_size=300).map(lambda t: _token(t.encode())),
    st.text(max_size=300),
)


@given(token=continue_tokens)
def test_a_crafted_continue_token_is_a_400_never_a_failure(live_reporter: str, token: str) -> None:
    response = requests.get(
        f"{live_reporter}/api/v1/sustainability/nodes", params={"continue": token}, timeout=10
    )
    assert response.status_code in (200, 400)
    assert response.headers["content-type"].startswith("application/json")
