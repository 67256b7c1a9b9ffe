"""The kinds of value a settings variable holds, each with its parser and its words.

Each function returns an ``EnvValue`` to put in a field's ``Annotated`` metadata. The words in
``accepts`` are the ones an error and the reference table show, so they say what a reader types.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from shared.core.secret import Secret
from shared.settings.env import EnvValue, Rejected

_E = TypeVar("_E", bound=enum.Enum)


def seconds() -> EnvValue:
    """A positive, finite number of seconds."""

    def parse(text: str) -> float:
        number = float(text)
        if not (number > 0 and math.isfinite(number)):
            raise ValueError(text)
        return number

    return EnvValue("a positive number of seconds", parse)


def number(*, low: float) -> EnvValue:
    """A number of at least ``low`` (never nan)."""

    def parse(text: str) -> float:
        value = float(text)
        if not value >= low:  # also rejects nan
            raise ValueError(text)
        return value

    return EnvValue(f"a number of at least {low:g}", parse)


def integer(*, low: int, high: int | None = None) -> EnvValue:
    """A whole number from ``low`` to ``high`` (no upper bound when None)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            raise ValueError(text)
        return value

    bounds = f"of at least {low}" if high is None else f"from {low} to {high}"
    return EnvValue(f"an integer {bounds}", parse)


def port() -> EnvValue:
    return EnvValue("a port 1-65535", integer(low=1, high=65535).parse)


def boolean() -> EnvValue:
    def parse(text: str) -> bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)

    return EnvValue("true or false (also 1/0, yes/no, on/off)", parse)


def choice(kind: type[_E], accepted: Collection[_E] | None = None) -> EnvValue:
    """One member of ``kind`` by value, in any case; ``accepted`` narrows which members."""
    members = tuple(kind) if accepted is None else tuple(accepted)

    def parse(text: str) -> _E:
        value = kind(text.lower())
        if value not in members:
            raise ValueError(text)
        return value

    return EnvValue(f"one of {', '.join(str(m.value) for m in members)}", parse)


def text_choice(*values: str) -> EnvValue:
    """One of a few literal strings, exactly as written (e.g. TLS versions)."""

    def parse(text: str) -> str:
        if text not in values:
            raise ValueError(text)
        return text

    return EnvValue(f"one of {', '.join(values)}", parse)


def upper_text() -> EnvValue:
    return EnvValue("text (upper-cased)", str.upper)


def names(*, lower: bool) -> EnvValue:
    """A comma-separated list; blanks between commas are dropped."""

    def parse(text: str) -> tuple[str, ...]:
        items = (item.strip() for item in text.split(","))
        return tuple(item.lower() if lower else item for item in items if item)

    return EnvValue("a comma-separated list", parse)


def label_selectors() -> EnvValue:
    """Kubernetes label selectors separated by ``;`` (a selector's own commas AND its terms);
    blanks between semicolons are dropped. The API server judges each one's syntax."""

    def parse(text: str) -> tuple[str, ...]:
        selectors = tuple(s.strip() for s in text.split(";") if s.strip())
        if not selectors:
            raise ValueError(text)
        return selectors

    return EnvValue("label selectors separated by ';'", parse, show=";".join)


def secret() -> EnvValue:
    return EnvValue("a secret", Secret, secret=True, show=_set_or_unset)


def path() -> EnvValue:
    return EnvValue("a file path", Path)


def http_url() -> EnvValue:
    """An http(s) URL with a host and without credentials, trailing ``/`` removed."""

    def parse(text: str) -> str:
        parts = urlsplit(text)
        if parts.password:
            # Never quoted: the value holds a password.
            raise Rejected("expected a URL without credentials; put them in the token variable")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(text)
        return text.rstrip("/")

    return EnvValue("an http(s) URL with a host", parse)


def redis_url() -> EnvValue:
    """``redis://[:password@]host[:port][/db]`` or ``rediss://``, kept as a ``Secret``."""

    def parse(text: str) -> Secret:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ValueError(text) from None
        db = parts.path.strip("/")
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or port == 0:
            raise ValueError(text)
        if db and not db.isdigit():
            raise ValueError(text)
        return Secret(text)

    # The URL may carry a password, so it is a secret: never quoted, logged without it.
    return EnvValue(
        "redis://[:password@]host[:port][/db] (or rediss://) with a port 1-65535 and a numeric db",
        parse,
        secret=True,
        show=redacted_redis_url,
    )


def timestamp() -> EnvValue:
    """An RFC 3339 time with a zone offset, as UTC."""

    def parse(text: str) -> datetime:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(text)
        return moment.astimezone(UTC)

    return EnvValue("an RFC 3339 time with a zone offset, like 2026-11-26T12:00:00Z", parse)


def dns_names() -> EnvValue:
    """The DNS names of a comma-separated SAN list (IP addresses are another field's)."""
    return EnvValue(_SANS, lambda text: tuple(n for n, ip in _sans(text) if not ip))


def ip_addresses() -> EnvValue:
    """The IP addresses of a comma-separated SAN list, normalised."""
    return EnvValue(_SANS, lambda text: tuple(n for n, ip in _sans(text) if ip))


_SANS = "comma-separated DNS names and IP addresses"


def _sans(text: str) -> list[tuple[str, bool]]:
    """Each entry with whether it is an IP address; a malformed entry is named."""
    entries: list[tuple[str, bool]] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            entries.append((str(ipaddress.ip_address(entry)), True))
        except ValueError:
            if any(ch.isspace() or ch in "/:@" for ch in entry):
                raise Rejected(f"expected {_SANS}, got {entry!r}") from None
            entries.append((entry.lower(), False))
    return entries


def redacted_redis_url(url: Secret | None) -> str:
    """``redis://host:6379/0`` without the password, or ``unset``."""
    if url is None:
        return "unset"
    parts = urlsplit(url.reveal())
    port = f":{parts.port}" if parts.port else ""
    auth = ":***@" if parts.password else ""
    return f"{parts.scheme}://{auth}{parts.hostname}{port}{parts.path}"


def _set_or_unset(value: Secret | None) -> str:
    return "set" if value else "unset"
