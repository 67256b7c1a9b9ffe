"""The Karmada controller's per-policy view, polled from its health site and served as is.

When ``STELLAR_CARBON_REPORTER_KARMADA_URL`` is set, a background task reads
``<url>/api/v1/policies`` every interval and keeps the last document that parsed, with the time
it was read. ``GET /api/v1/sustainability/karmada`` answers that document plus ``fetchedAt`` and
``stale`` (read more than three intervals ago): a controller that is down or restarting never
fails a request, it only ages the answer. Before the first good read the path answers 503
``karmada_unavailable``; without the setting, 404 ``karmada_not_configured``.

The controller runs a leader and a standby behind one Service, and only the leader decides: a
standby's document (``"leader": false``) is kept only while no leader's has been read. Each read
opens a new connection, so the Service picks a replica afresh, and a read that reaches the standby
is tried again a few times at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from reporter.errors import KarmadaNotConfigured, KarmadaUnavailable
from shared.core.clock import Clock, rfc3339

logger = logging.getLogger(__name__)

POLICIES_PATH = "/api/v1/policies"
STALE_INTERVALS = 3
_TIMEOUT_SECONDS = 10.0
_ERROR_TEXT = 200
_TRIES_FOR_LEADER = 4


class BadDocument(ValueError):
    """The controller answered something that is not its policies document."""


@dataclass(frozen=True, slots=True)
class Fetched:
    document: Mapping[str, Any]
    fetched_at: datetime


def parse(body: Any) -> Mapping[str, Any]:
    """The document when it has the controller's shape (an object with a ``policies`` list)."""
    if not isinstance(body, dict) or not isinstance(body.get("policies"), list):
        raise BadDocument("expected an object with a policies list")
    return body


class KarmadaPoller:
    """Reads the controller's policies every ``interval`` seconds; ``last`` is the newest good
    read (the leader's once one answered), ``last_error`` why the newest read failed (None once
    one succeeds again)."""

    def __init__(self, url: str, *, interval: float, clock: Clock) -> None:
        self.url = url.rstrip("/") + POLICIES_PATH
        self.interval = interval
        self._clock = clock
        self.last: Fetched | None = None
        self.last_error: str | None = None

    async def poll(self, session: aiohttp.ClientSession) -> None:
        """One read (a few when they reach the standby); a failure keeps the last document and
        is logged, never raised."""
        for _ in range(_TRIES_FOR_LEADER):
            if await self._read(session):
                return

    async def _read(self, session: aiohttp.ClientSession) -> bool:
        """Whether the read was done with: it failed, or it reached the leader."""
        try:
            async with session.get(self.url) as response:
                response.raise_for_status()
                document = parse(await response.json())
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            error = f"{type(e).__name__}: {str(e)[:_ERROR_TEXT]}"
            if error != self.last_error:
                logger.warning("cannot read the Karmada policies from %s: %s", self.url, error)
            self.last_error = error
            return True
        leader = document.get("leader") is not False
        if leader or self.last is None or self.last.document.get("leader") is False:
            if self.last_error is not None or self.last is None:
                logger.info("read the Karmada policies from %s", self.url)
            self.last = Fetched(document, self._clock())
        self.last_error = None
        return leader

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=min(_TIMEOUT_SECONDS, self.interval))
        # A new connection per read: kube-proxy balances connections, not requests.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            while True:
                await self.poll(session)
                await asyncio.sleep(self.interval)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.run(), name="karmada-policies")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def body(self) -> dict[str, Any]:
        """The last document with ``fetchedAt`` and ``stale``; ``KarmadaUnavailable`` before
        the first good read."""
        if self.last is None:
            reason = f": {self.last_error}" if self.last_error else ""
            raise KarmadaUnavailable(f"the Karmada controller has not answered yet{reason}")
        age = self._clock() - self.last.fetched_at
        return {
            **self.last.document,
            "fetchedAt": rfc3339(self.last.fetched_at),
            "stale": age > timedelta(seconds=STALE_INTERVALS * self.interval),
        }


KARMADA = web.AppKey("karmada", KarmadaPoller)


async def karmada_policies(request: web.Request) -> web.Response:
    poller = request.app.get(KARMADA)
    if poller is None:
        raise KarmadaNotConfigured(
            "no Karmada controller configured (STELLAR_CARBON_REPORTER_KARMADA_URL)"
        )
    return web.json_response(poller.body())


def add_routes(app: web.Application, poller: KarmadaPoller | None, *, prefix: str) -> None:
    """The route, and with a poller its background task for the application's lifetime."""
    app.router.add_get(f"{prefix}/karmada", karmada_policies, name="karmada")
    if poller is not None:
        app[KARMADA] = poller
        app.cleanup_ctx.append(poller.lifecycle)
