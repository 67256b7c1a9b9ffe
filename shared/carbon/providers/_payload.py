"""Checked reading of upstream carbon documents, shared by the HTTP providers.

Each provider describes the documents it reads as pydantic models over the types below, with only
the fields it uses; unknown fields are ignored so upstreams can grow. Validation is strict (a
number is a JSON number, never ``"12"`` or ``true``) and ``parse_payload`` turns the first failure
into one ``PayloadError`` in one format: ``<field path>: <problem>``, then the start of the
document. Each provider reports that as ``BadResponse``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from shared.core.errors import truncate

T = TypeVar("T")


class PayloadError(ValueError):
    """The upstream document does not have the shape or values we need."""


class Payload(BaseModel):
    """Base of every upstream document model: camelCase keys, strict JSON types, extras ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, strict=True, allow_inf_nan=False, extra="ignore", frozen=True
    )


GramsPerKwh = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
"""A carbon intensity in gCO2eq/kWh: a finite number, zero or more. Null is never 0: a field
that may be unknown says so with ``GramsPerKwh | None``."""

Percentage = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=100)]

Name = Annotated[str, Field(strict=True, min_length=1)]

_ISO_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# RFC 3339 date-time with a mandatory offset; the same pattern is in docs/custom-api.schema.json.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def iso_time(value: object) -> datetime:
    """An ISO 8601 timestamp (``Z``, offsets, any fraction of a second) as an aware UTC datetime.

    A timestamp without an offset is read as UTC, which is what every provider here means by it.
    """
    text = _text(value)
    if _ISO_DATE_ONLY.match(text):
        raise PydanticCustomError(
            "iso_time", "should be a date and time, got a date: {text}", {"text": repr(text)}
        )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError(
            "iso_time", "is not an ISO 8601 time: {text}", {"text": repr(truncate(text, 60))}
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def rfc3339_time(value: object) -> datetime:
    """An RFC 3339 date-time with an explicit offset, as an aware UTC datetime."""
    text = _text(value)
    if not _RFC3339.match(text):
        raise PydanticCustomError(
            "rfc3339_time",
            "should be an RFC 3339 date-time with offset, got {text}",
            {"text": repr(truncate(text, 60))},
        )
    return iso_time(text)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise PydanticCustomError(
            "time_type", "should be a non-empty string, got {kind}", {"kind": _kind(value)}
        )
    return value


IsoTime = Annotated[datetime, PlainValidator(iso_time)]

Rfc3339Time = Annotated[datetime, PlainValidator(rfc3339_time)]

OptionalRfc3339Time = Annotated[datetime | None, PlainValidator(rfc3339_time)]
"""For a field that may be absent (then None) but, when present, must be a time: not even null."""


def parse_payload(adapter: TypeAdapter[T], body: object, root: str) -> T:
    """``body`` read through ``adapter``, or ``PayloadError`` naming the first failure's path.

    ``root`` names the document when the failure is at its top or inside a top-level list.
    """
    try:
        return adapter.validate_python(body)
    except ValidationError as e:
        errors = e.errors(include_url=False)
    # Raised outside the handler: the pydantic error quotes whole inputs and need not ride along.
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise PayloadError(
        f"{_path(first['loc'], root)}: {_problem(first)}{more}; body: {_excerpt(body)}"
    )


def _path(loc: tuple[int | str, ...], root: str) -> str:
    path = "" if loc and isinstance(loc[0], str) else root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _problem(error: ErrorDetails) -> str:
    kind, value = error["type"], error["input"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "missing":
        return "is missing"
    if kind in ("float_type", "float_parsing", "int_type"):
        return "is null (unknown)" if value is None else f"should be a number, got {_kind(value)}"
    if kind == "finite_number":
        return "is not finite"
    if kind == "greater_than_equal":
        if ctx["ge"] == 0:
            return f"is negative ({value:g})"
        return f"should be at least {ctx['ge']:g}, got {value:g}"
    if kind == "less_than_equal":
        return f"should be at most {ctx['le']:g}, got {value:g}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"should be an object, got {_kind(value)}"
    if kind == "list_type":
        return f"should be a list, got {_kind(value)}"
    if kind in ("string_type", "string_too_short"):
        return f"should be a non-empty string, got {_kind(value)}"
    if kind == "bool_type":
        return f"should be true or false, got {_kind(value)}"
    return error["msg"]


def _excerpt(body: object) -> str:
    # The body was decoded from text already scrubbed of the provider's secrets.
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(body)
    return truncate(text, 120)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
