"""Reading decoded JSON by shape: the members of Kubernetes manifests and admission reviews.

JSON from the API server may hold ``null`` or a wrong type anywhere. The lenient reader treats both
as absent; strict readers treat ``null`` as absent and raise the caller's own error for a wrong
type, naming where it was found. ``dict`` and ``list`` (what JSON decodes to) take a fast path, and
strict readers are closures over the error type rather than functions taking it, since they run
on the admission path for every member a decision looks at (a closure call costs a third of a
``functools.partial`` with a keyword).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ShapeError = Callable[[str], Exception]
"""Builds the caller's exception from a message such as ``spec is str, expected an object``."""

ObjectReader = Callable[[object, str], Mapping[str, Any]]
ArrayReader = Callable[[object, str], list[Any]]


def object_or_empty(value: object) -> Mapping[str, Any]:
    """A JSON member as a mapping; ``null`` or a wrong type reads as empty."""
    if type(value) is dict:
        return value
    return value if isinstance(value, Mapping) else {}


def object_reader(error: ShapeError) -> ObjectReader:
    """``read(value, where)``: a member that must be an object when present; ``null`` is empty."""

    def read(value: object, where: str) -> Mapping[str, Any]:
        if type(value) is dict:
            return value
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise error(f"{where} is {type(value).__name__}, expected an object")
        return value

    return read


def array_reader(error: ShapeError) -> ArrayReader:
    """``read(value, where)``: a member that must be an array when present; ``null`` is empty."""

    def read(value: object, where: str) -> list[Any]:
        if type(value) is list:
            return value
        if value is None:
            return []
        raise error(f"{where} is {type(value).__name__}, expected an array")

    return read
