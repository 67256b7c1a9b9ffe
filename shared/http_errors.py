"""The one error path of every HTTP service: each failure answered with the JSON error document.

``{"error": {"code": "...", "message": "..."}}`` with the right status, whatever went wrong and
wherever: a handler raising ``HttpError``, aiohttp's own 404/405/413, an unexpected exception
(logged with its traceback, answered with a fixed message so no stack trace or internal detail
reaches a client), and what aiohttp's HTTP parser rejects before any route or middleware runs (an
over-long request line or header, a malformed header, broken chunking, a body that does not decode
as its ``Content-Encoding``). Serve an application with ``JsonErrorRunner`` (not ``web.run_app``
or a plain ``AppRunner``) and give it ``error_middleware``: together they leave no text/plain page.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

logger = logging.getLogger(__name__)

ECHO_LIMIT = 100
"""Characters of client input repeated back in an error message."""

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "request_header_fields_too_large",
}


class HttpError(Exception):
    """An error a service reports to the client as the JSON error document."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, **extra}}, status=status, headers=headers
    )


def _failed(service: str) -> web.Response:
    return error_response(500, "internal_error", f"the {service} failed to answer this request")


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(exc.status, "http_error")
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        headers["Allow"] = allowed
        message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    elif exc.status == 404:
        message = f"no such resource: {request.path[:ECHO_LIMIT]}"
    elif exc.status == 413:
        message = f"the request body is larger than {request.client_max_size} bytes"
    else:
        message = exc.reason
    return error_response(exc.status, code, message, headers=headers)


def error_middleware(service: str) -> Middleware:
    """Answer every failure of ``service``'s handlers as JSON; nothing a client sends can crash
    the process. ``service`` names it in the fixed message of a 500."""

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except HttpError as e:
            return web.json_response({"error": e.body()}, status=e.status)
        except web.HTTPException as e:
            if e.status < 400:  # redirects and the like are answers, not errors
                raise
            return _from_http_exception(request, e)
        except Exception:
            # Logged with the traceback for operators; the client only learns that it failed.
            logger.exception("unexpected error serving %s %s", request.method, request.path)
            return _failed(service)

    return json_errors


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser rejects with the JSON error
    document instead of aiohttp's ``text/plain`` page.

    Those requests never reach the application or its middleware, so this is the only place that
    can answer them."""

    def __init__(self, manager: web.Server, *, service: str, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._service = service

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
            response = _failed(self._service)
        else:
            reason = exc.message if isinstance(exc, HttpProcessingError) else message
            text = " ".join(str(reason or "").split())[:ECHO_LIMIT] or "malformed request"
            code = _HTTP_CODES.get(status, "bad_request")
            response = error_response(status, code, f"the request is not valid HTTP: {text}")
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    """``web.Server`` whose connections use ``JsonErrorRequestHandler``."""

    def __init__(self, server: web.Server, *, service: str) -> None:
        super().__init__(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **server._kwargs,
        )
        self._service = service

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(
            self, loop=asyncio.get_running_loop(), service=self._service, **self._kwargs
        )


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose server answers parser-level errors with the JSON error document;
    ``service`` names the service in the fixed message of a 500."""

    def __init__(self, app: web.Application, *, service: str, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._service = service

    async def _make_server(self) -> web.Server:
        return _JsonErrorServer(await super()._make_server(), service=self._service)
