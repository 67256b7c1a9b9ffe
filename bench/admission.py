"""Admission cost: the webhook against the floor any Python webhook pays.

Both servers run in their own process, pinned to one core, behind the same TLS (a generated CA and a
serving certificate for 127.0.0.1); the load generator runs in this process on the other core. The
same AdmissionReview bodies (a read-pool pod of a few KB, the operator's StatefulSet pods, a pod
of about 200 KB) go to both at the same concurrency levels, over keep-alive connections, bounded
in count and time. Each cell is measured in several interleaved rounds and the best round kept,
which filters out moments when other work on the machine took the cores.

Besides client-side throughput and latency, the server process's CPU time per request is read from
``/proc``: when the client saturates before the server does, the throughput ratio flatters the
slower server, while the CPU ratio (the capacity each would have on a core of its own) does not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp

from bench.loadgen import LoadResult, closed_loop, open_loop
from bench.payloads import (
    OPERATOR_PODS,
    large_pod,
    operator_read_pods,
    read_pool_pod,
    review_bodies,
    reviews_of,
)
from bench.servers import Server, Tls, make_tls, pinned, running, usable_cpus
from webhook.app import MUTATE_PATH

RATIO_TARGET = 0.8
P99_TARGET_MS = 5.0
FIXED_RATE = 500.0


@dataclass(frozen=True, slots=True)
class Plan:
    concurrency: tuple[int, ...]
    max_requests: int
    max_seconds: float
    rounds: int
    fixed_rate_seconds: float

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        if quick:
            return cls((1, 8, 32), 5000, 1.0, 1, 3.0)
        return cls((1, 8, 32), 50_000, 4.0, 3, 8.0)


@dataclass(frozen=True, slots=True)
class Cell:
    result: LoadResult
    server_cpu_seconds: float

    def summary(self) -> dict[str, Any]:
        served = max(1, self.result.requests - self.result.errors)
        return {
            **self.result.summary(),
            "server_cpu_ms_per_request": round(self.server_cpu_seconds * 1000 / served, 4),
            "server_cpu_utilisation": round(self.server_cpu_seconds / self.result.seconds, 3),
        }

    @property
    def cpu_per_request(self) -> float:
        return self.server_cpu_seconds / max(1, self.result.requests - self.result.errors)


async def _check(session: aiohttp.ClientSession, url: str, body: bytes, *, mutates: bool) -> None:
    """One request: the answer must be a 200 AdmissionReview for the same uid (with a patch)."""
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        answer = await r.json()
        if r.status != 200:
            raise RuntimeError(f"{url} answered {r.status}: {answer}")
    uid = json.loads(body)["request"]["uid"]
    response = answer["response"]
    if response["uid"] != uid or response["allowed"] is not True:
        raise RuntimeError(f"{url} answered for the wrong request: {response}")
    if mutates and "patch" not in response:
        raise RuntimeError(f"{url} did not mutate a read-pool pod: {response}")


async def _measure(
    server: Server, tls: Tls, bodies: Sequence[bytes], concurrency: int, plan: Plan
) -> Cell:
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=tls.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        url = server.url(MUTATE_PATH, tls=True)
        # Warm up: TLS handshakes, connection pool, server-side caches.
        await closed_loop(
            session, url, bodies, concurrency=concurrency, max_requests=50, max_seconds=2.0
        )
        before = server.cpu_seconds()
        result = await closed_loop(
            session,
            url,
            bodies,
            concurrency=concurrency,
            max_requests=plan.max_requests,
            max_seconds=plan.max_seconds,
        )
        return Cell(result, server.cpu_seconds() - before)


async def _fixed_rate(server: Server, tls: Tls, bodies: Sequence[bytes], plan: Plan) -> Cell:
    connector = aiohttp.TCPConnector(limit=64, ssl=tls.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        url = server.url(MUTATE_PATH, tls=True)
        await closed_loop(session, url, bodies, concurrency=8, max_requests=200, max_seconds=2.0)
        before = server.cpu_seconds()
        result = await open_loop(
            session, url, bodies, rate=FIXED_RATE, seconds=plan.fixed_rate_seconds
        )
        return Cell(result, server.cpu_seconds() - before)


async def run(quick: bool) -> dict[str, Any]:
    plan = Plan.for_mode(quick)
    cpus = usable_cpus()
    server_cpu, client_cpu = (cpus[-1], cpus[0]) if len(cpus) >= 2 else (None, None)
    payloads = {
        "read-pool": review_bodies(read_pool_pod(), 64),
        "operator-pool": reviews_of(operator_read_pods(OPERATOR_PODS)),
        "large": review_bodies(large_pod(), 8),
    }
    with TemporaryDirectory(prefix="bench-tls-") as directory:
        tls = make_tls(Path(directory))
        cert = ["--cert-dir", directory]
        async with (
            running("floor", cert, cpu=server_cpu) as floor,
            running("webhook", cert, cpu=server_cpu) as webhook,
        ):
            with pinned(client_cpu):
                connector = aiohttp.TCPConnector(ssl=tls.client_context())
                async with aiohttp.ClientSession(connector=connector) as session:
                    body = payloads["read-pool"][0]
                    await _check(session, floor.url(MUTATE_PATH, tls=True), body, mutates=False)
                    await _check(session, webhook.url(MUTATE_PATH, tls=True), body, mutates=True)
                runs = []
                for payload, bodies in payloads.items():
                    for concurrency in plan.concurrency:
                        best: dict[str, Cell] = {}
                        for _ in range(plan.rounds):
                            for server in (floor, webhook):
                                cell = await _measure(server, tls, bodies, concurrency, plan)
                                kept = best.get(server.kind)
                                if kept is None or cell.result.throughput > kept.result.throughput:
                                    best[server.kind] = cell
                        runs.append(_row(payload, concurrency, best["floor"], best["webhook"]))
                fixed: dict[str, Cell] = {}
                for _ in range(plan.rounds):
                    for server in (floor, webhook):
                        cell = await _fixed_rate(server, tls, payloads["read-pool"], plan)
                        kept = fixed.get(server.kind)
                        if kept is None or cell.result.percentile(0.99) < kept.result.percentile(
                            0.99
                        ):
                            fixed[server.kind] = cell
            webhook_info = webhook.info
    read_pool = [r for r in runs if r["payload"] == "read-pool"]
    floor_peak = max(read_pool, key=lambda r: r["floor"]["throughput_per_s"])
    webhook_peak = max(read_pool, key=lambda r: r["webhook"]["throughput_per_s"])
    ratio = round(
        webhook_peak["webhook"]["throughput_per_s"] / floor_peak["floor"]["throughput_per_s"], 3
    )
    capacity = round(
        floor_peak["floor"]["server_cpu_ms_per_request"]
        / webhook_peak["webhook"]["server_cpu_ms_per_request"],
        3,
    )
    p99 = fixed["webhook"].result.percentile(0.99)
    return {
        "payload_bytes": {name: len(bodies[0]) for name, bodies in payloads.items()},
        "pinned": {"server_cpu": server_cpu, "client_cpu": client_cpu},
        "webhook_inventory": webhook_info,
        "runs": runs,
        "ratio": ratio,
        "ratio_basis": (
            "peak read-pool throughput: webhook (concurrency "
            f"{webhook_peak['concurrency']}) / floor (concurrency {floor_peak['concurrency']})"
        ),
        "capacity_ratio": capacity,
        "capacity_basis": "floor server CPU ms per request / webhook's, at those peaks",
        "fixed_rate": {
            "rate_per_s": FIXED_RATE,
            "seconds": plan.fixed_rate_seconds,
            "rounds": plan.rounds,
            "floor": fixed["floor"].summary(),
            "webhook": fixed["webhook"].summary(),
        },
        "p99_ms": round(p99, 3),
        "targets": {
            "ratio": {"target": f">= {RATIO_TARGET}", "value": ratio, "met": ratio >= RATIO_TARGET},
            "p99_ms_at_500_rps": {
                "target": f"<= {P99_TARGET_MS}",
                "value": round(p99, 3),
                "met": p99 <= P99_TARGET_MS,
            },
        },
    }


def _row(payload: str, concurrency: int, floor: Cell, webhook: Cell) -> dict[str, Any]:
    ratio = webhook.result.throughput / floor.result.throughput if floor.result.throughput else 0
    capacity = (
        floor.cpu_per_request / webhook.cpu_per_request if webhook.cpu_per_request else math.nan
    )
    return {
        "payload": payload,
        "concurrency": concurrency,
        "floor": floor.summary(),
        "webhook": webhook.summary(),
        "ratio": round(ratio, 3),
        "capacity_ratio": round(capacity, 3),
    }
