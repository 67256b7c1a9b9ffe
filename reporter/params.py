"""Query-parameter parsing: strict values or a ``BadParameter`` naming the parameter.

Nothing is coerced silently: ``hours=1.5``, ``hours=`` and a repeated ``hours`` are all rejected,
so a typo never turns into a different question than the one the client meant to ask.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import orjson
from multidict import MultiMapping

from reporter.errors import BadParameter
from shared.core.models import Cloud

_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
_TOKEN_PREFIX = "n1."  # noqa: S105 - a format marker, not a credential


def single(query: MultiMapping[str], name: str) -> str | None:
    """The parameter's only value, None when absent; repeating it is an error."""
    values = query.getall(name, [])
    if not values:
        return None
    if len(values) > 1:
        raise BadParameter(name, "must be given at most once")
    return values[0]


def integer(query: MultiMapping[str], name: str, *, default: int, low: int, high: int) -> int:
    """An integer within ``[low, high]``; ``default`` when absent."""
    raw = single(query, name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise BadParameter(name, f"must be an integer from {low} to {high}, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(name, f"must be from {low} to {high}, got {value}")
    return value


def optional_integer(query: MultiMapping[str], name: str, *, low: int, high: int) -> int | None:
    """Like ``integer`` but None when absent."""
    if single(query, name) is None:
        return None
    return integer(query, name, default=low, low=low, high=high)


def cloud(query: MultiMapping[str], name: str = "cloud") -> Cloud | None:
    raw = single(query, name)
    if raw is None:
        return None
    try:
        return Cloud(raw.strip().lower())
    except ValueError:
        choices = ", ".join(c.value for c in Cloud)
        raise BadParameter(name, f"must be one of {choices}, got {raw[:40]!r}") from None


def text(query: MultiMapping[str], name: str, *, max_length: int = 253) -> str | None:
    """A non-empty string of at most ``max_length`` characters (253: a Kubernetes label value)."""
    raw = single(query, name)
    if raw is None:
        return None
    if not raw or len(raw) > max_length:
        raise BadParameter(name, f"must be 1 to {max_length} characters")
    return raw


def encode_continue(after: str) -> str:
    """An opaque continue token resuming a name-ordered listing after ``after``."""
    payload = json.dumps({"after": after}, separators=(",", ":")).encode()
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_continue(query: MultiMapping[str], name: str = "continue") -> str | None:
    """The name to resume after, None when absent; a token this API did not issue is a 400."""
    raw = single(query, name)
    if raw is None:
        return None
    error = BadParameter(name, "is not a continue token issued by this API")
    if not raw.startswith(_TOKEN_PREFIX) or len(raw) > 2048:
        raise error
    encoded = raw[len(_TOKEN_PREFIX) :]
    try:
        # orjson refuses nesting beyond 1024 levels with a decode error; the standard library
        # would recurse into a RecursionError on a crafted token.
        payload = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        raise error from None
    after = payload.get("after") if isinstance(payload, Mapping) else None
    if not isinstance(after, str) or not after:
        raise error
    return after


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]+([Zz]|[+-][0-9]{2}:[0-9]{2})")


def moment(query: MultiMapping[str], name: str) -> datetime | None:
    """An RFC 3339 time with a zone (``2026-11-26T12:00:00Z``) or a date (``2026-11-26``,
    midnight UTC), as UTC; None when absent."""
    raw = single(query, name)
    if raw is None:
        return None
    error = BadParameter(
        name, f"must be an RFC 3339 time with a zone or a date (YYYY-MM-DD), got {raw[:40]!r}"
    )
    if _DATE.fullmatch(raw):
        text = raw + "T00:00:00+00:00"
    elif _MOMENT.fullmatch(raw):
        text = raw.replace("Z", "+00:00").replace("z", "+00:00")
    else:
        raise error
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise error from None


def choice(query: MultiMapping[str], name: str, choices: Sequence[str], *, default: str) -> str:
    """One of ``choices`` exactly; ``default`` when absent."""
    raw = single(query, name)
    if raw is None:
        return default
    if raw not in choices:
        raise BadParameter(name, f"must be one of {', '.join(choices)}, got {raw[:40]!r}")
    return raw
