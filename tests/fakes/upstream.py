"""What the fake upstream carbon APIs share: routes whose behaviour a test switches by mode.

Each fake (Electricity Maps, the Carbon Aware SDK, the custom operator API) subclasses
``FakeUpstream`` with its own ``Mode`` enum, routes and payloads. The base counts calls per route,
holds ``slow`` answers until released, stamps ``Retry-After`` on rate-limit refusals, and
``serve`` runs any of them on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer

SLOW = "slow"
"""The mode value, in every fake's ``Mode``, of a route that answers only once released."""

M = TypeVar("M", bound=enum.StrEnum)


@dataclass
class FakeUpstream(Generic[M]):
    modes: dict[str, M] = field(default_factory=dict)
    """The mode of each route; subclasses start every route of theirs in ``OK``."""
    retry_after: str = "30"
    slow_seconds: float = 5.0
    requests: Counter[str] = field(default_factory=Counter)
    """Calls per route name, counted before any check."""
    base_url: str = ""
    """The root the fake is served at, set by ``serve``."""
    _released: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    def set_mode(self, mode: M, *routes: str) -> None:
        """Switch ``routes`` (all when none given) to ``mode``."""
        for route in routes or tuple(self.modes):
            self.modes[route] = mode

    def release(self) -> None:
        """Let slow handlers finish, so the server can shut down promptly."""
        self._released.set()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def make_app(self) -> web.Application:
        raise NotImplementedError

    async def _enter(self, route: str) -> M:
        """Count a call to ``route`` and hold it while the route is slow; its mode."""
        self.requests[route] += 1
        mode = self.modes[route]
        if mode == SLOW:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self.slow_seconds)
        return mode

    def _rate_limited(self, response: web.Response) -> web.Response:
        response.headers["Retry-After"] = self.retry_after
        return response


F = TypeVar("F", bound="FakeUpstream[Any]")


def json_body(status: int, body: object) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


@contextlib.asynccontextmanager
async def serve(fake: F, root: str = "") -> AsyncIterator[F]:
    """Run ``fake`` on loopback with ``base_url`` at ``root``; release it before shutdown."""
    async with TestServer(fake.make_app()) as server:
        fake.base_url = str(server.make_url(root))
        try:
            yield fake
        finally:
            fake.release()
