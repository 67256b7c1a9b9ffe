"""Reading node and pod manifests: typed access to their JSON, and the error a bad one raises.

Every reader names the field it refused, so a broken object in a watch stream or an inventory file
is reported precisely and dropped, never trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.core.errors import CarbonError
from shared.core.shapes import array_reader, object_reader


class ManifestError(CarbonError, ValueError):
    """A node or pod manifest cannot be read (missing name, malformed field, bad quantity)."""


mapping = object_reader(ManifestError)
"""``mapping(value, where)``: a member that must be an object when present."""

sequence = array_reader(ManifestError)
"""``sequence(value, where)``: a member that must be a list when present."""


def string_map(value: object, where: str) -> dict[str, str]:
    raw = mapping(value, where)
    out: dict[str, str] = {}
    for key, item in raw.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ManifestError(f"{where} must map strings to strings (see {key!r})")
        out[key] = item
    return out


def object_name(metadata: Mapping[str, Any], kind: str) -> str:
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{kind} without metadata.name")
    return name
