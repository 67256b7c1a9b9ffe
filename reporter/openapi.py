"""The hand-written OpenAPI 3.1 document of the reporter API, shipped as package data."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, cast

import yaml

DOCUMENT = "openapi.yaml"


@functools.cache
def document() -> dict[str, Any]:
    """The parsed document (cached; treat as read-only)."""
    text = resources.files("reporter").joinpath(DOCUMENT).read_text(encoding="utf-8")
    return cast(dict[str, Any], yaml.safe_load(text))


@functools.cache
def document_json() -> bytes:
    """The document serialised once, as served."""
    return json.dumps(document(), indent=2).encode()
