"""Pod creations through the real API server, timed one by one, and what admission did to them.

``PodCreations`` POSTs pods to one namespace of a control plane over a kept-alive HTTPS
connection pool, as a controller would, and times each create on the client: from sending the
request to reading the response. A failed creation is any answer but 201 (or no answer). Two
shapes of load:

* ``steady``: open loop, one create due every ``1 / rate`` seconds whatever the API server does,
  so a stall shows as concurrency piling up rather than as a lower offered rate;
* ``burst``: a fixed number of creates sent by a bounded number of concurrent workers, each
  sending its next create when the previous answered (a controller scaling a pool at once).

``patched`` then lists the namespace and counts the pods that carry the webhook's decision (the
ranking annotation and preferred node-affinity terms): for a selected pod, missing either means
it was admitted without the webhook's patch.
"""

from __future__ import annotations

import asyncio
import copy
import math
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Self

import aiohttp
import orjson

from bench.loadgen import percentile
from tests.e2e.cluster import ControlPlane
from webhook.mutation import RANKING_ANNOTATION

_KEPT_ERRORS: Final = 5


@dataclass(frozen=True, slots=True)
class Creations:
    """What one stretch of pod creations gave."""

    attempted: int
    failed: int
    seconds: float
    latencies_ms: tuple[float, ...]
    """Of the successful creates, in completion order."""
    errors: tuple[str, ...] = ()
    """The first few failures, described."""

    @property
    def created(self) -> int:
        return self.attempted - self.failed

    def summary(self) -> dict[str, Any]:
        return {
            "pods": self.attempted,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "pods_per_s": round(self.created / self.seconds, 1) if self.seconds > 0 else 0.0,
            "p50_ms": round(percentile(self.latencies_ms, 0.50), 2),
            "p90_ms": round(percentile(self.latencies_ms, 0.90), 2),
            "p99_ms": round(percentile(self.latencies_ms, 0.99), 2),
            "max_ms": round(max(self.latencies_ms, default=math.nan), 2),
            "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True)
class Patched:
    """How many of a namespace's pods carry the webhook's decision."""

    pods: int
    patched: int
    unpatched: tuple[str, ...]
    """Names of pods without it."""

    @property
    def missing(self) -> int:
        return self.pods - self.patched


class _Tally:
    def __init__(self) -> None:
        self.attempted = 0
        self.failed = 0
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def fail(self, why: str) -> None:
        self.failed += 1
        if len(self.errors) < _KEPT_ERRORS:
            self.errors.append(why)

    def result(self, seconds: float) -> Creations:
        return Creations(
            self.attempted, self.failed, seconds, tuple(self.latencies), tuple(self.errors)
        )


class PodCreations:
    """Creates pods from ``manifest`` (named ``<prefix>-<n>``) in ``namespace``."""

    def __init__(
        self,
        control_plane: ControlPlane,
        namespace: str,
        manifest: Mapping[str, Any],
        *,
        prefix: str = "load",
        connections: int = 64,
    ) -> None:
        self._server = control_plane.server
        self._token = control_plane.token
        self._context = ssl.create_default_context(cafile=str(control_plane.ca_path))
        self._connections = connections
        self.namespace = namespace
        self._manifest = copy.deepcopy(dict(manifest))
        self._prefix = prefix
        self._next = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._context, limit=self._connections),
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def _pods_url(self) -> str:
        return f"{self._server}/api/v1/namespaces/{self.namespace}/pods"

    def _body(self) -> bytes:
        self._next += 1
        self._manifest["metadata"]["name"] = f"{self._prefix}-{self._next}"
        return orjson.dumps(self._manifest)

    async def _create(self, tally: _Tally) -> None:
        assert self._session is not None
        body = self._body()
        tally.attempted += 1
        sent = time.perf_counter()
        try:
            async with self._session.post(
                self._pods_url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                answer = await response.read()
                if response.status != 201:
                    tally.fail(f"HTTP {response.status}: {answer[:200].decode(errors='replace')}")
                    return
        except (aiohttp.ClientError, TimeoutError) as e:
            tally.fail(f"{type(e).__name__}: {e}")
            return
        tally.latencies.append((time.perf_counter() - sent) * 1000)

    async def steady(
        self, rate: float, seconds: float, *, stop: asyncio.Event | None = None
    ) -> Creations:
        """One create due every ``1 / rate`` s for ``seconds`` (or until ``stop`` is set)."""
        tally = _Tally()
        pending: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        index = 0
        while True:
            due = started + index / rate
            if due - started >= seconds or (stop is not None and stop.is_set()):
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._create(tally))
            pending.add(task)
            task.add_done_callback(pending.discard)
            index += 1
        if pending:
            await asyncio.wait(pending)
        return tally.result(time.perf_counter() - started)

    async def burst(self, count: int, concurrency: int) -> Creations:
        """``count`` creates by ``concurrency`` workers, each waiting for its previous answer."""
        tally = _Tally()
        left = count

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await self._create(tally)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tally.result(time.perf_counter() - started)

    async def _pods(self) -> list[dict[str, Any]]:
        assert self._session is not None
        pods: list[dict[str, Any]] = []
        token = ""
        while True:
            params = {"limit": "500", **({"continue": token} if token else {})}
            async with self._session.get(self._pods_url, params=params) as response:
                response.raise_for_status()
                page = orjson.loads(await response.read())
            pods += page["items"]
            token = page["metadata"].get("continue") or ""
            if not token:
                return pods

    async def patched(self) -> Patched:
        """The namespace's pods, and which of them carry the webhook's decision."""
        pods = await self._pods()
        missing = tuple(p["metadata"]["name"] for p in pods if not carries_decision(p))
        return Patched(len(pods), len(pods) - len(missing), missing)

    async def delete_all(self, *, patience: float = 120.0) -> None:
        """Delete every pod of the namespace at once and wait until they are gone."""
        assert self._session is not None
        async with self._session.delete(
            self._pods_url, params={"gracePeriodSeconds": "0"}
        ) as response:
            response.raise_for_status()
        deadline = time.monotonic() + patience
        while await self._pods():
            if time.monotonic() > deadline:
                raise TimeoutError(f"pods of {self.namespace} still there after {patience:.0f}s")
            await asyncio.sleep(0.2)


def carries_decision(pod: Mapping[str, Any]) -> bool:
    """The webhook's patch is on the pod: its ranking annotation and preferred region terms."""
    annotations = pod["metadata"].get("annotations") or {}
    node_affinity = (pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}
    return RANKING_ANNOTATION in annotations and bool(
        node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")
    )
