"""Time as an injectable dependency, so tests and demos can pin it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def fixed(at: datetime) -> Clock:
    """A clock that always answers ``at`` (must be timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError("a fixed clock needs a timezone-aware datetime")
    moment = at.astimezone(UTC)
    return lambda: moment


def rfc3339(at: datetime) -> str:
    """``2026-11-26T12:00:00Z`` — UTC, seconds precision, as Kubernetes writes times."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
