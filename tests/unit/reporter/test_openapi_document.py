"""The OpenAPI document is true to the application: same routes, valid schemas, served as is."""

from __future__ import annotations

import jsonschema
import pytest

from reporter import openapi
from reporter.app import create_app
from reporter.settings import ReporterSettings
from tests.unit.reporter.cluster import Catalog, Cluster, FixedSnapshot, snapshot
from tests.unit.reporter.conftest import ClientFactory


def routed() -> set[tuple[str, str]]:
    app = create_app(
        ReporterSettings(),
        snapshot_source=FixedSnapshot(snapshot()),
        inventory=Cluster(),
        catalog=Catalog(),
    )
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in openapi.document()["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }


def test_every_route_is_documented_and_every_documented_operation_is_routed() -> None:
    assert routed() == documented()


def test_the_document_is_openapi_3_1_with_unique_operation_ids() -> None:
    document = openapi.document()
    assert document["openapi"] == "3.1.0"
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(openapi.document()["components"]["schemas"]))
def test_every_component_schema_is_valid_json_schema_2020_12(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(openapi.document()["components"]["schemas"][name])


@pytest.mark.parametrize("name", sorted(openapi.document()["components"]["schemas"]))
def test_object_schemas_reject_undocumented_fields(name: str) -> None:
    schema = openapi.document()["components"]["schemas"][name]
    if schema.get("type") == "object" and "properties" in schema:
        assert schema.get("additionalProperties") is False
        assert set(schema["required"]) == set(schema["properties"])


async def test_the_served_document_is_the_packaged_one(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    response = await client.get("/api/v1/sustainability/openapi.json")
    assert await response.json() == openapi.document()
