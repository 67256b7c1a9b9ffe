"""The carbon library's exception tree.

Messages never contain tokens, and upstream bodies in them are truncated.
"""

from __future__ import annotations

_BODY_LIMIT = 200


def truncate(body: str, limit: int = _BODY_LIMIT) -> str:
    """Shorten an upstream body for an error message."""
    body = " ".join(body.split())
    return body if len(body) <= limit else body[: limit - 1] + "…"


class CarbonError(Exception):
    """Base of every error this library raises on purpose."""


class ProviderError(CarbonError):
    """A provider could not give a value. ``provider`` names it; it never carries credentials."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class ProviderUnavailable(ProviderError):
    """Network error, timeout or 5xx: try again later, fall back meanwhile."""


class ProviderAuthError(ProviderError):
    """401/403: the credentials are missing, wrong, or lack access to this zone or route."""


class RateLimited(ProviderError):
    """429: wait at least ``retry_after`` seconds before asking this provider again."""

    def __init__(self, provider: str, message: str, retry_after: float | None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class BadResponse(ProviderError):
    """The provider answered with something unusable: malformed JSON, null or negative values."""


class UnknownZone(ProviderError):
    """The provider does not know this zone/location (404)."""


class NoForecast(ProviderError):
    """The provider cannot forecast this zone (e.g. Electricity Maps free tier). Not a fault."""


class ConfigError(CarbonError):
    """Settings are invalid; raised at startup with a message naming the setting."""


class CatalogError(ConfigError):
    """A region override file or catalog entry is invalid (a configuration error: the process
    stops at startup with the file and entry named)."""
