"""The reporter's API errors, answered through the one error path every service shares.

Handlers raise ``ApiError`` subclasses; ``error_middleware`` (``shared.http_errors``) maps them,
aiohttp's own 404/405 and any unexpected exception to ``{"error": {"code": ..., "message": ...}}``
with the right status, and ``shared.http_errors.JsonErrorRunner`` does the same for what aiohttp's
HTTP parser rejects before any route.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared import http_errors
from shared.http_errors import ECHO_LIMIT, HttpError

__all__ = ["ApiError", "BadParameter", "RegionNotFound", "error_middleware"]

error_middleware = http_errors.error_middleware("reporter")


class ApiError(HttpError):
    """An error the API reports to the client as JSON."""


class BadParameter(ApiError):
    """A query or path parameter has a value the API cannot use (400). Names the parameter."""

    status = 400
    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter

    def body(self) -> dict[str, Any]:
        return {**super().body(), "parameter": self.parameter}


class RegionNotFound(ApiError):
    """The region is neither in the cluster, nor configured, nor tracked (404)."""

    status = 404
    code = "region_not_found"

    def __init__(self, region: str, suggestions: Sequence[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown region {region[:ECHO_LIMIT]!r}{hint}")
        self.suggestions = tuple(suggestions)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "suggestions": list(self.suggestions)}


class HistoryUnavailable(ApiError):
    """The history database is not ready or does not answer (503); the live views still work."""

    status = 503
    code = "history_unavailable"


class KarmadaNotConfigured(ApiError):
    """No Karmada controller is configured to read policies from (404)."""

    status = 404
    code = "karmada_not_configured"


class KarmadaUnavailable(ApiError):
    """The Karmada controller has not answered yet since the reporter started (503)."""

    status = 503
    code = "karmada_unavailable"
