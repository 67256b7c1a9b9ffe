"""The reporter's API errors and the middleware that turns every failure into a JSON error body.

Handlers raise ``ApiError`` subclasses; the middleware maps them, aiohttp's own 404/405 and any
unexpected exception to ``{"error": {"code": ..., "message": ...}}`` with the right status. An
unexpected exception is logged with its traceback but answered with a fixed message, so no stack
trace or internal detail ever reaches a client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

logger = logging.getLogger(__name__)

_ECHO_LIMIT = 100
"""Characters of client input repeated back in an error message."""


class ApiError(Exception):
    """An error the API reports to the client as JSON."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


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
        super().__init__(f"unknown region {region[:_ECHO_LIMIT]!r}{hint}")
        self.suggestions = tuple(suggestions)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "suggestions": list(self.suggestions)}


class HistoryUnavailable(ApiError):
    """The history database is not ready or does not answer (503); the live views still work."""

    status = 503
    code = "history_unavailable"


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, **extra}}, status=status, headers=headers
    )


_HTTP_CODES = {
    400: "bad_request",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "request_header_fields_too_large",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
}


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(exc.status, "http_error")
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        headers["Allow"] = allowed
        message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    elif exc.status == 404:
        message = f"no such resource: {request.path}"
    else:
        message = exc.reason
    return error_response(exc.status, code, message, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as JSON; nothing a client sends can crash the process."""
    try:
        return await handler(request)
    except ApiError as e:
        return web.json_response({"error": e.body()}, status=e.status)
    except web.HTTPException as e:
        if e.status < 400:  # redirects and the like are answers, not errors
            raise
        return _from_http_exception(request, e)
    except Exception:
        # Logged with the traceback for operators; the client only learns that it failed.
        logger.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the reporter failed to answer this request")


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser rejects (an over-long request
    line or header, a malformed header, a body that does not decode as its Content-Encoding) with
    the API's JSON error document instead of aiohttp's ``text/plain`` page.

    Those requests never reach the application or its middleware, so this is the only place that
    can answer them."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp logs the failure and refuses to answer twice; its own page is discarded.
        super().handle_error(request, status, exc, message)
        if status >= 500:
            response = error_response(
                500, "internal_error", "the reporter failed to answer this request"
            )
        else:
            reason = exc.message if isinstance(exc, HttpProcessingError) else message
            text = " ".join(str(reason or "").split())[:_ECHO_LIMIT] or "malformed request"
            code = _HTTP_CODES.get(status, "bad_request")
            response = error_response(status, code, f"the request is not valid HTTP: {text}")
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """``web.Server`` whose connections use ``JsonErrorRequestHandler``."""

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=asyncio.get_running_loop(), **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` serving an application with ``JsonErrorServer``: use it (not
    ``web.run_app``) so every 4xx the reporter sends is the documented JSON error."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **server._kwargs,
        )
