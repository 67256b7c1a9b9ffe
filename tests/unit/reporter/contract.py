"""Checks responses against the reporter's OpenAPI document (JSON Schema 2020-12 validation)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from reporter import openapi

DOCUMENT_URI = "urn:stellar-carbon:reporter-openapi"


def _registry() -> Registry[Any]:
    resource = Resource.from_contents(openapi.document(), default_specification=DRAFT202012)
    return Registry().with_resource(DOCUMENT_URI, resource)


REGISTRY = _registry()


def _template(path: str) -> str | None:
    for template in openapi.document()["paths"]:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return str(template)
    return None


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = openapi.document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_schema(url: str, method: str, status: int, content_type: str) -> dict[str, Any]:
    """The documented schema of this response.

    Errors on paths or methods the document does not have (404, 405) must be the Error schema;
    anything else must be documented with its status and content type.
    """
    template = _template(urlsplit(url).path)
    operation = openapi.document()["paths"].get(template, {}).get(method.lower())
    if operation is None or (status >= 400 and str(status) not in operation["responses"]):
        assert status in (404, 405, 500), f"{method} {url} answered an undocumented {status}"
        return {"$ref": "#/components/schemas/Error"}
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template} does not document {status}"
    content = _deref(responses[str(status)])["content"]
    assert content_type in content, f"{method} {template} {status} is not {content_type}"
    schema: dict[str, Any] = content[content_type]["schema"]
    return schema


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validate against a schema from the document; its ``#/...`` refs resolve inside it."""
    if "$ref" in schema:
        schema = {"$ref": DOCUMENT_URI + schema["$ref"]}
    validator = jsonschema.Draft202012Validator(
        schema, registry=REGISTRY, format_checker=jsonschema.FormatChecker()
    )
    validator.validate(instance)


async def call(client: Any, url: str, method: str = "GET") -> tuple[int, Any]:
    """Request ``url`` and check the answer against the document; (status, parsed body)."""
    response = await client.request(method, url)
    if response.content_type == "application/json":
        body: Any = await response.json()
    else:
        body = await response.text()
    validate(body, response_schema(url, method, response.status, response.content_type))
    return response.status, body
