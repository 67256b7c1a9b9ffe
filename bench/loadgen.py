"""An HTTP load generator on aiohttp: closed loop (N workers) and open loop (fixed rate).

Both are bounded in request count and in time. Latency is measured on the client, from the moment
a request was due to the end of its response: in the closed loop that is when the worker sends it;
in the open loop it is the scheduled time, so a stalled server (or client) shows up as latency
instead of silently lowering the offered rate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, share: float) -> float:
        return percentile(self.latencies_ms, share)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "throughput_per_s": round(self.throughput, 1),
            "p50_ms": round(self.percentile(0.50), 3),
            "p90_ms": round(self.percentile(0.90), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "max_ms": round(max(self.latencies_ms, default=math.nan), 3),
        }


def percentile(values: Sequence[float], share: float) -> float:
    """Linear interpolation between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def _send(session: aiohttp.ClientSession, method: str, url: str, body: bytes | None) -> bool:
    headers = {"Content-Type": "application/json"} if body is not None else None
    async with session.request(method, url, data=body, headers=headers) as response:
        await response.read()
        return response.status == 200


async def closed_loop(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes | None],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    method: str = "POST",
) -> LoadResult:
    """``concurrency`` workers, each sending its next request as soon as the previous answered."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        nonlocal errors, issued
        while issued < max_requests and time.perf_counter() < deadline:
            body = bodies[issued % len(bodies)]
            issued += 1
            sent = time.perf_counter()
            try:
                ok = await _send(session, method, url, body)
            except aiohttp.ClientError:
                ok = False
            latencies.append((time.perf_counter() - sent) * 1000)
            errors += not ok

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(len(latencies), errors, time.perf_counter() - started, tuple(latencies))


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Sequence[bytes | None],
    *,
    rate: float,
    seconds: float,
    method: str = "POST",
    max_in_flight: int = 256,
) -> LoadResult:
    """Requests due every ``1 / rate`` seconds for ``seconds``, whatever the server does."""
    count = max(1, round(rate * seconds))
    latencies: list[float] = []
    errors = 0
    in_flight = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float, body: bytes | None) -> None:
        nonlocal errors
        async with in_flight:
            try:
                ok = await _send(session, method, url, body)
            except aiohttp.ClientError:
                ok = False
        latencies.append((time.perf_counter() - due) * 1000)
        errors += not ok

    started = time.perf_counter()
    for index in range(count):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due, bodies[index % len(bodies)]))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=max(10.0, seconds))
    for task in tasks:
        task.cancel()
    return LoadResult(count, errors + len(tasks), time.perf_counter() - started, tuple(latencies))


async def sequential_gets(
    session: aiohttp.ClientSession,
    urls: Mapping[str, str],
    *,
    max_requests: int,
    max_seconds: float,
) -> dict[str, dict[str, Any]]:
    """Each named URL in turn, one GET at a time: its latency summary. A failure fails the run."""
    summaries: dict[str, dict[str, Any]] = {}
    for name, url in urls.items():
        result = await closed_loop(
            session,
            url,
            [None],
            concurrency=1,
            max_requests=max_requests,
            max_seconds=max_seconds,
            method="GET",
        )
        if result.errors:
            raise RuntimeError(f"{url}: {result.errors} failed requests")
        summaries[name] = result.summary()
    return summaries
