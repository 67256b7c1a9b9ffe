"""Growth: how the hot paths' time and memory scale with the cluster (100, 1,000, 5,000 nodes).

In-process, on generated clusters (four Stellar pods per node) and mock carbon data:

* ``ranking`` — the webhook's per-request placement maths: eligible regions for a read-replica
  pod over every node, the ranking of those regions, and the preference terms;
* ``mutation`` — one whole admission decision (``webhook.admission.admit``): selection,
  eligibility, ranking, the JSON patch and the response;
* ``nodes_view`` — building the reporter's view (footprints of every node, region rows, totals),
  which happens when the snapshot or inventory changes;
* ``nodes_page`` — serialising one default ``/nodes`` page (500 nodes) from a built view.

Time is the best of several timed batches (per call); memory is the ``tracemalloc`` peak of one
call above what was allocated before it.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.cluster import inventory_regions, mock_snapshot, synthetic_cluster
from bench.payloads import read_pool_pod, review_bodies
from reporter.views import build_view
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.demo import StaticInventory
from shared.core.clock import fixed
from shared.regions.catalog import RegionCatalog
from shared.scoring.ranking import preference_terms, rank
from webhook.admission import Placement, admit
from webhook.eligibility import eligible_regions
from webhook.review import AdmissionRequest, parse_review

SIZES = (100, 1000, 5000)
PODS_PER_NODE = 4


def timed(operation: Callable[[], object], *, budget: float) -> float:
    """Seconds per call: the best of five batches, each about ``budget / 5`` long."""
    started = time.perf_counter()
    operation()
    single = max(time.perf_counter() - started, 1e-7)
    batch = max(1, int(budget / 5 / single))
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(batch):
            operation()
        best = min(best, (time.perf_counter() - started) / batch)
    return best


def peak_kib(operation: Callable[[], object]) -> float:
    """Peak memory one call allocates above the baseline, KiB."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        operation()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - before) / 1024


def operations(
    inventory: StaticInventory,
    snapshot: CarbonSnapshot,
    catalog: RegionCatalog,
    request: AdmissionRequest,
    at: datetime,
) -> dict[str, Callable[[], object]]:
    """The four measured operations on one cluster."""
    pod = request.object
    assert pod is not None
    nodes = inventory.nodes
    pods = inventory.pods

    def ranking() -> object:
        eligibility = eligible_regions(pod, nodes.values())
        return preference_terms(rank(snapshot, eligibility.regions, now=at))

    def mutation() -> object:
        decision = admit(
            request,
            carbon=lambda: snapshot,
            nodes=lambda: nodes,
            placement=Placement(),
            clock=fixed(at),
        )
        if decision.outcome != "mutated":
            raise RuntimeError(f"admission did not mutate: {decision.outcome}")
        return json.dumps(decision.response)

    def nodes_view() -> object:
        return build_view(
            snapshot, nodes, pods, catalog=catalog, extra_regions=(), usage={}, now=at
        )

    view = build_view(snapshot, nodes, pods, catalog=catalog, extra_regions=(), usage={}, now=at)

    def nodes_page() -> object:
        page = view.nodes_page(region=None, after=None, limit=500)
        return json.dumps({"nodes": list(page.items), "total": page.total})

    return {
        "ranking": ranking,
        "mutation": mutation,
        "nodes_view": nodes_view,
        "nodes_page": nodes_page,
    }


async def run(quick: bool) -> dict[str, Any]:
    budget = 0.15 if quick else 0.6
    catalog = RegionCatalog.load()
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    request = parse_review(review_bodies(read_pool_pod(), 1)[0])
    rows: dict[str, dict[str, Any]] = {}
    for size in SIZES:
        inventory = synthetic_cluster(size, size * PODS_PER_NODE)
        snapshot = await mock_snapshot(inventory_regions(inventory, catalog), at=at)
        measured = operations(inventory, snapshot, catalog, request, at)
        rows[str(size)] = {
            "regions": len(snapshot.regions),
            **{
                name: {
                    "ms": round(timed(operation, budget=budget) * 1000, 4),
                    "peak_kib": round(peak_kib(operation), 1),
                }
                for name, operation in measured.items()
            },
        }
    smallest, largest = str(SIZES[0]), str(SIZES[-1])
    return {
        "sizes": rows,
        "growth_factor": {
            name: round(rows[largest][name]["ms"] / rows[smallest][name]["ms"], 1)
            for name in ("ranking", "mutation", "nodes_view", "nodes_page")
        },
        "growth_basis": f"time at {largest} nodes / time at {smallest} nodes",
    }
