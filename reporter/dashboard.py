"""The sustainability dashboard: one page, its script and its style, served from package data.

The page holds no data of its own: its script reads the same JSON API as every other client
(``/api/v1/sustainability/*``) and draws the forecasts as inline SVG. Everything it needs comes
from the reporter itself, so it works on a cluster with no internet, and the
``Content-Security-Policy`` on every asset forbids anything else (no inline script, no CDN).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

from aiohttp import web

ASSET_PREFIX: Final = "/dashboard"
CONTENT_TYPES: Final = MappingProxyType(
    {
        "dashboard.js": "text/javascript",
        "dashboard.css": "text/css",
    }
)
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def _asset(name: str) -> bytes:
    return (resources.files("reporter") / "static" / name).read_bytes()


def _served(body: bytes, content_type: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The assets change only with the reporter's version; the data comes from the API.
    response.headers["Cache-Control"] = "no-cache"
    return response


async def page(request: web.Request) -> web.Response:
    return _served(_asset("index.html"), "text/html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    content_type = CONTENT_TYPES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    return _served(_asset(name), content_type)


def add_dashboard_routes(app: web.Application) -> None:
    app.router.add_get("/", page, name="dashboard")
    app.router.add_get(ASSET_PREFIX + "/{asset}", asset, name="dashboard-asset")
