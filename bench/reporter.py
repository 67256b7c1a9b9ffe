"""Reporter at scale: 5,000 nodes and 20,000 Stellar pods.

Three measurements, each against a server in its own process:

1. latency of ``/nodes`` (a default page, and all 5,000 in one page), the ``/metrics`` summary
   and Prometheus ``/metrics`` once the view is built, plus the first request (which builds it),
   and the reporter's resident memory afterwards (``VmRSS`` from ``/proc``);
2. the webhook's resident memory with the same cluster in its inventory, after admissions;
3. upstream provider calls per hour while the reporter serves a steady request load: the real
   refresher, chain and cache run over the mock provider on a clock running ``TIME_SCALE`` times
   faster than real time (refresh interval scaled to match), so a simulated hour passes in
   seconds; the count comes from the chain's own call counter.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp

from bench.loadgen import closed_loop, open_loop, sequential_gets
from bench.payloads import read_pool_pod, review_bodies
from bench.servers import Server, make_tls, running
from shared.settings import CarbonSettings
from webhook.app import MUTATE_PATH

NODES = 5000
PODS = 20000
API = "/api/v1/sustainability"
ENDPOINTS = {
    "nodes": f"{API}/nodes",
    "nodes_all": f"{API}/nodes?limit=5000",
    "metrics_summary": f"{API}/metrics",
    "prometheus": "/metrics",
}


async def _latencies(server: Server, quick: bool) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.get(server.url(ENDPOINTS["nodes"])) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"/nodes answered {response.status}")
        first = (time.perf_counter() - started) * 1000
        results: dict[str, Any] = {"first_request_ms": round(first, 1)}
        results.update(
            await sequential_gets(
                session,
                {name: server.url(path) for name, path in ENDPOINTS.items()},
                max_requests=100 if quick else 400,
                max_seconds=3.0 if quick else 10.0,
            )
        )
        return results


async def _stats(session: aiohttp.ClientSession, server: Server) -> dict[str, Any]:
    async with session.get(server.url("/_bench/stats")) as response:
        stats: dict[str, Any] = await response.json()
        return stats


async def _calls_per_hour(quick: bool) -> dict[str, Any]:
    scale = 360.0 if quick else 120.0
    seconds = 10.0 if quick else 30.0
    rate = 20.0
    args = ["--nodes", str(NODES), "--pods", str(PODS), "--time-scale", str(scale)]
    async with running("reporter", args) as server, aiohttp.ClientSession() as session:
        before = await _stats(session, server)
        loads = await asyncio.gather(
            *(
                open_loop(
                    session,
                    server.url(path),
                    [None],
                    rate=rate / 3,
                    seconds=seconds,
                    method="GET",
                    max_in_flight=8,
                )
                for path in (ENDPOINTS["nodes"], ENDPOINTS["metrics_summary"], "/metrics")
            )
        )
        after = await _stats(session, server)
    simulated = (
        datetime.fromisoformat(after["clock"]) - datetime.fromisoformat(before["clock"])
    ).total_seconds()
    calls = sum(after["calls"].values()) - sum(before["calls"].values())
    settings = CarbonSettings()
    expected = after["zones"] * (3600 / settings.current_ttl + 3600 / settings.forecast_ttl)
    return {
        "time_scale": scale,
        "real_seconds": seconds,
        "simulated_hours": round(simulated / 3600, 3),
        "requests_served": sum(load.requests - load.errors for load in loads),
        "request_errors": sum(load.errors for load in loads),
        "zones": after["zones"],
        "regions": after["regions"],
        "startup_calls": sum(before["calls"].values()),
        "refresh_cycles": after["cycles"] - before["cycles"],
        "calls_in_window": calls,
        "calls_per_hour": round(calls / simulated * 3600, 1) if simulated > 0 else None,
        "expected_at_most_per_hour": expected,
        "expected_basis": (
            f"zones x (3600/current_ttl {settings.current_ttl:g}s + "
            f"3600/forecast_ttl {settings.forecast_ttl:g}s)"
        ),
    }


async def _webhook_rss(quick: bool) -> dict[str, Any]:
    bodies = review_bodies(read_pool_pod(), 64)
    with TemporaryDirectory(prefix="bench-tls-") as directory:
        tls = make_tls(Path(directory))
        args = ["--cert-dir", directory, "--nodes", str(NODES), "--pods", str(PODS)]
        async with running("webhook", args) as server:
            connector = aiohttp.TCPConnector(limit=1, ssl=tls.client_context())
            async with aiohttp.ClientSession(connector=connector) as session:
                result = await closed_loop(
                    session,
                    server.url(MUTATE_PATH, tls=True),
                    bodies,
                    concurrency=1,
                    max_requests=200 if quick else 1000,
                    max_seconds=5.0 if quick else 15.0,
                )
            return {"rss_mb": round(server.rss_mb(), 1), "admissions": result.summary()}


async def run(quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    async with running("reporter", ["--nodes", str(NODES), "--pods", str(PODS)]) as server:
        ready = time.perf_counter() - started
        latencies = await _latencies(server, quick)
        reporter_rss = server.rss_mb()
    webhook = await _webhook_rss(quick)
    calls = await _calls_per_hour(quick)
    return {
        "nodes": NODES,
        "pods": PODS,
        "startup_s": round(ready, 2),
        "first_request_ms": latencies.pop("first_request_ms"),
        "endpoints": latencies,
        "nodes_p50_ms": latencies["nodes"]["p50_ms"],
        "nodes_p99_ms": latencies["nodes"]["p99_ms"],
        "metrics_p50_ms": latencies["metrics_summary"]["p50_ms"],
        "metrics_p99_ms": latencies["metrics_summary"]["p99_ms"],
        "rss_mb": {"reporter": round(reporter_rss, 1), "webhook": webhook["rss_mb"]},
        "webhook_admissions_at_scale": webhook["admissions"],
        "provider_calls": calls,
    }
