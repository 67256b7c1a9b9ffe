"""The sustainability history at the sizes it is specified for.

1. Disk: a year of hourly samples for 100 regions (with their node roles, the cluster and the read
   replicas, as the recorder writes them) in an SQLite file; the file's size after a checkpoint.
   ``--quick`` writes 30 days and scales the size to a year.
2. Latency: 30 days x 100 regions served by the reporter in its own process (``bench.serve
   history``): sequential requests to the cluster series hourly and daily, one region's series,
   and the report as JSON and CSV; p50 and p99.
3. Recording at 5,000 nodes and 20,000 pods: the time one hourly sample takes (the samples from a
   built view, and the write), as a share of the hour it covers.

The samples are synthetic but shaped like real ones: intensities from a daily curve per region,
a few stale and static hours, and about one hour in 200 missing (never written).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp

from bench.cluster import inventory_regions, mock_snapshot, synthetic_cluster
from bench.loadgen import sequential_gets
from bench.servers import running
from reporter.history.recorder import HistoryRecorder
from reporter.history.samples import CLUSTER, MIXED, NO_ROLE, READ_REPLICAS, Coverage, Kind, Sample
from reporter.history.store import HistoryStore
from reporter.views import ViewCache
from shared.carbon.snapshot import CarbonSnapshot
from shared.core.clock import fixed, rfc3339
from shared.regions.catalog import RegionCatalog

REGIONS = 100
ROLES = ("validator", "horizon", "soroban-rpc", "read-replica", MIXED, NO_ROLE)
END = datetime(2026, 11, 26, tzinfo=UTC)
API = "/api/v1/sustainability"
TARGETS = {"history_p99_ms": 50.0, "report_p99_ms": 200.0, "year_mb": 200.0, "record_cpu": 0.05}


def _coverage(rng: random.Random) -> Coverage | None:
    roll = rng.random()
    if roll < 0.005:
        return None  # a gap: nothing written
    if roll < 0.03:
        return Coverage.STALE
    if roll < 0.04:
        return Coverage.STATIC
    return Coverage.LIVE


def synthetic_hours(days: int, *, seed: int = 7) -> Iterator[list[Sample]]:
    """A day of samples at a time, ending at ``END``."""
    rng = random.Random(seed)
    base = [rng.uniform(30, 700) for _ in range(REGIONS)]
    start = END - timedelta(days=days)
    for day in range(days):
        batch: list[Sample] = []
        for h in range(24):
            hour = start + timedelta(days=day, hours=h)
            if _coverage(rng) is None:
                continue
            shape = 1 + 0.25 * math.sin((h - 6) / 24 * 2 * math.pi)
            energy = grams = 0.0
            for r in range(REGIONS):
                coverage = _coverage(rng) or Coverage.MISSING
                intensity = base[r] * shape if coverage is not Coverage.MISSING else None
                wh = 50 * 20.0 * 1.135
                g = wh / 1000 * intensity if intensity is not None else None
                energy += wh
                grams += g or 0.0
                batch.append(
                    Sample(hour, Kind.REGION, f"region-{r:03d}", 50, wh, g, coverage,
                           intensity, "electricitymaps" if coverage is Coverage.LIVE
                           else "electricitymaps(stale)", 1.135)
                )  # fmt: skip
            for role in ROLES:
                batch.append(
                    Sample(hour, Kind.ROLE, role, 800, energy / 6, grams / 6, Coverage.LIVE)
                )
            batch.append(Sample(hour, Kind.CLUSTER, CLUSTER, 5000, energy, grams, Coverage.LIVE))
            batch.append(
                Sample(hour, Kind.REPLICAS, READ_REPLICAS, 40, 900.0, 90.0, Coverage.LIVE,
                       baseline_grams=150.0, placement={"region-001": 30, "region-002": 10})
            )  # fmt: skip
        yield batch


async def fill(path: Path, days: int) -> tuple[int, float]:
    """Write ``days`` of synthetic history; (samples written, seconds)."""
    store = HistoryStore.open(str(path))
    written = 0
    started = time.perf_counter()
    try:
        await store.migrate()
        for batch in synthetic_hours(days):
            written += await store.record(batch)
    finally:
        await store.close()
    return written, time.perf_counter() - started


def on_disk_mb(path: Path) -> float:
    """The database with its write-ahead log, in MB (10^6 bytes)."""
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1e6


async def _disk(quick: bool) -> dict[str, Any]:
    days = 30 if quick else 365
    with TemporaryDirectory(prefix="bench-history-") as directory:
        path = Path(directory) / "history.db"
        written, seconds = await fill(path, days)
        size = on_disk_mb(path)
    year = size * 365 / days
    return {
        "days_written": days,
        "samples": written,
        "write_seconds": round(seconds, 1),
        "mb": round(size, 1),
        "year_mb": round(year, 1),
        "year_basis": "measured" if days == 365 else f"{days} days scaled to 365",
    }


ENDPOINTS = {
    "history_cluster_hourly": f"{API}/history?from=2026-10-27&to=2026-11-26&step=hour",
    "history_cluster_daily": f"{API}/history?from=2026-10-27&to=2026-11-26&step=day",
    "history_region_hourly": f"{API}/history?from=2026-10-27&to=2026-11-26&region=region-042",
    "report_json": f"{API}/report?from=2026-10-27&to=2026-11-26",
    "report_csv": f"{API}/report?from=2026-10-27&to=2026-11-26&format=csv",
}


async def _latency(quick: bool) -> dict[str, Any]:
    with TemporaryDirectory(prefix="bench-history-") as directory:
        path = Path(directory) / "history.db"
        await fill(path, 30)
        arguments = ["--history-file", str(path), "--clock", rfc3339(END)]
        async with running("history", arguments) as server, aiohttp.ClientSession() as session:
            out: dict[str, Any] = {}
            for name, path in ENDPOINTS.items():
                # The server's own CPU per request does not wait behind neighbours on a shared
                # machine: the least each answer costs, where wall-clock tails cannot say.
                before = server.cpu_seconds()
                (summary,) = (
                    await sequential_gets(
                        session,
                        {name: server.url(path)},
                        max_requests=50 if quick else 300,
                        max_seconds=10.0 if quick else 30.0,
                    )
                ).values()
                used = server.cpu_seconds() - before
                summary["server_cpu_ms_per_request"] = round(used * 1000 / summary["requests"], 2)
                out[name] = summary
    return out


@dataclass(frozen=True, slots=True)
class _Snapshot:
    snapshot: CarbonSnapshot


async def _recording(quick: bool) -> dict[str, Any]:
    inventory = synthetic_cluster(5000, 20000)
    catalog = RegionCatalog.load()
    at = END + timedelta(minutes=1)
    snapshot = await mock_snapshot(inventory_regions(inventory, catalog), at=at)

    source = _Snapshot(snapshot)
    rounds = 3 if quick else 10
    timings: list[float] = []
    cpu: list[float] = []
    with TemporaryDirectory(prefix="bench-history-") as directory:
        store = HistoryStore.open(str(Path(directory) / "history.db"))
        await store.migrate()
        try:
            for i in range(rounds):
                # A fresh view each hour, as the inventory and the snapshot change between hours.
                clock = fixed(at + timedelta(hours=i))
                views = ViewCache(
                    snapshot_source=source,
                    inventory=inventory,
                    catalog=catalog,
                    clock=clock,
                )
                views.current()  # the reporter builds it for its own endpoints anyway
                recorder = HistoryRecorder(store, views, clock=clock)
                began, began_cpu = time.perf_counter(), time.process_time()
                outcome = await recorder.record_once()
                timings.append(time.perf_counter() - began)
                cpu.append(time.process_time() - began_cpu)
                if outcome is None or outcome.written == 0:
                    raise RuntimeError("the recorder wrote nothing")
        finally:
            await store.close()
    worst = max(cpu)
    return {
        "nodes": len(inventory.nodes),
        "pods": len(inventory.pods),
        "rounds": rounds,
        "samples_per_hour": outcome.written,
        "wall_ms_max": round(max(timings) * 1000, 1),
        "cpu_ms_max": round(worst * 1000, 1),
        "cpu_share_of_hour": worst / 3600,
    }


async def run(quick: bool) -> dict[str, Any]:
    disk = await _disk(quick)
    latency = await _latency(quick)
    recording = await _recording(quick)
    history_p99 = max(latency[n]["p99_ms"] for n in ENDPOINTS if n.startswith("history"))
    report_p99 = max(latency[n]["p99_ms"] for n in ENDPOINTS if n.startswith("report"))
    targets = {
        "history p99 (30 d x 100 regions)": _target(history_p99, TARGETS["history_p99_ms"], "ms"),
        "report p99 (30 d x 100 regions)": _target(report_p99, TARGETS["report_p99_ms"], "ms"),
        "a year of 100 regions on disk": _target(disk["year_mb"], TARGETS["year_mb"], "MB"),
        "recording CPU at 5,000 nodes": _target(
            recording["cpu_share_of_hour"] * 100, TARGETS["record_cpu"] * 100, "% of an hour"
        ),
    }
    return {
        "disk": disk,
        "latency": latency,
        "recording": recording,
        "targets": targets,
        "load_average_at_end": os.getloadavg()[0],
    }


def _target(value: float, limit: float, unit: str) -> dict[str, Any]:
    return {"target": f"<= {limit:g} {unit}", "value": round(value, 4), "met": value <= limit}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(asyncio.run(run("--quick" in sys.argv)), indent=2))
