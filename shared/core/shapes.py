"""Reading decoded JSON by shape: the members of Kubernetes manifests and admission reviews.

JSON from the API server may hold ``null`` or a wrong type anywhere. The lenient reader treats both
as absent; strict readers treat ``null`` as absent and raise the caller's own error for a wrong
type, naming where it was found. ``dict`` and ``list`` (what JSON decodes to) take a fast path, and
strict readers are closures over the error type rather than functions taking it, since they run
on the admission path for every member a decision looks at (a closure call costs a third of a
``functools.partial`` with a keyword).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
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


MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted from a client.

A Pod (and the AdmissionReview around it, managed fields included) nests a few dozen levels at
most; anything near the interpreter's recursion limit (about 1,000) would make code that walks or
prints the value fail instead of answering."""


def deeper_than(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether decoded JSON nests arrays and objects more than ``limit`` levels; walks without
    recursion, so any depth can be asked about."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if type(current) is dict:
            children: Iterable[object] = current.values()
        elif type(current) is list:
            children = current
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if type(child) in _CONTAINERS)
    return False


_CONTAINERS = (dict, list)


def quote(value: object, limit: int = 60) -> str:
    """A short one-line rendering of client input for an error message, ``missing`` for None.

    Containers are only named (``an object``, ``an array``), never printed: printing recurses, and
    a message gains nothing from a hostile value's inside."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        text = json.dumps(value[: limit + 1])
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)[: limit + 1]
    else:
        text = kind_of(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kind_of(value: object) -> str:
    """The JSON kind of a decoded value, as an error message names it."""
    return _KINDS.get(type(value), type(value).__name__)


_KINDS = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
