"""Multi-cluster replay: carbon weights against equal weights and an hourly oracle, with Karmada.

A ``Divided``/``Weighted`` read pool of ``REPLICAS`` replicas, re-weighed hour by hour by the
controller's own decision (``multicluster.decide`` with its default rules: 10 % margin, 1 h
dwell, half the pool moved at most, floor weight 1, fourth-power weights) on the 2024 traces with
the benchmark's 24 h forecasts, charged at each hour's actual intensity where the replicas were.
Two figures, kept apart:

* ``fleet`` (model): one cluster per region of the benchmark fleet (``bench.carbon``'s fourteen),
  the four 2024 weeks (``--quick``: the first), the division being Karmada's Webster rule as
  ported in ``multicluster.weights`` (``bench.karmada_weights.replay``).
* ``karmada`` (real): Karmada v1.18.2 as the end-to-end tests run it (``tests/e2e/karmada.py``,
  kwok nodes) with one member cluster per region of the same fleet, the four weeks (``--quick``:
  the three members of the end-to-end fixture, the first day of the first week),
  time-compressed: the decision runs on the simulated clock, so the dwell is one simulated hour,
  and a simulated hour lasts as long as its write takes to settle. Each re-weighing is written by
  the controller's own server-side apply (``KarmadaWriter``, ``apply_body``) to the
  PropagationPolicy of the operator's read-pool StatefulSet; the hour is charged on the division
  the real karmada-scheduler wrote into the ResourceBinding, and each write is timed until the
  binding holds the new division and until the member clusters run it, ready. The model's figure
  for the same clusters and hours stands beside it.

Equal weights and the oracle (every replica in the cluster actually cleanest that hour) are the
same Webster division and minimum on both. Re-divisions per dwell period count writes per policy
against the hours replayed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any, Final

from kubernetes_asyncio import client as k8s

from bench.carbon import REGIONS, WEEKS, fleet_regions
from bench.karmada_weights import REPLICAS, replay
from bench.traces import Traces, build_traces, snapshot_at
from multicluster.decide import ClusterCarbon, Rules, decide
from multicluster.karmada import KarmadaWriter
from multicluster.placement import PolicyKind
from multicluster.policies import Annotations, PolicyRef, apply_body
from multicluster.weights import DEFAULT_EXPONENT, divide, moved
from shared.core.models import RegionInfo
from shared.regions.catalog import RegionCatalog
from shared.scoring.ranking import rank
from tests.e2e.cluster import Binaries
from tests.e2e.karmada import SYSTEM_NAMESPACE, Karmada
from tests.e2e.karmada_members import MEMBERS, Member
from tests.e2e.karmada_pool import (
    division_of,
    member_clients,
    propagate_read_pool,
    read_binding,
    read_pool_policy,
    running,
    weights_of,
)
from tests.e2e.kube import eventually, fresh_namespace
from tests.e2e.operator import READ_POOL

HOURS: Final = 168
QUICK_HOURS: Final = 24
SETTLE_SECONDS: Final = 180.0
TARGETS: Final = {
    "reduction_vs_equal": 0.50,
    "fraction_of_oracle": 0.90,
    "redivisions_per_dwell": 1.0,
}
_DWELL_HOURS: Final = Rules().dwell / timedelta(hours=1)


def summarise(totals: Mapping[str, float], hours: int) -> dict[str, Any]:
    """Reduction against equal weights, share of the oracle's saving, replicas moved per day and
    re-divisions per dwell period of the one policy, from summed emissions and counts."""
    saved = totals["equal"] - totals["emitted"]
    possible = totals["equal"] - totals["oracle"]
    return {
        "reduction_vs_equal": round(saved / totals["equal"], 4),
        "fraction_of_oracle": round(saved / possible, 4) if possible > 0 else None,
        "replicas_moved_per_day": round(totals["moved"] / (hours / 24), 2),
        "redivisions": int(totals["changes"]),
        "redivisions_per_dwell": round(totals["changes"] / (hours / _DWELL_HOURS), 4),
        "hours": hours,
    }


def _added(into: dict[str, float], more: Mapping[str, float]) -> None:
    for key, value in more.items():
        into[key] = into.get(key, 0.0) + value


async def fleet(weeks: Sequence[str], hours: int) -> dict[str, Any]:
    """The model on one cluster per region of the benchmark fleet, every week."""
    regions = fleet_regions()
    totals: dict[str, float] = {}
    per_week = {}
    for week in weeks:
        start = datetime.fromisoformat(week).replace(tzinfo=UTC)
        traces = await build_traces(regions, start, hours + 72)
        result = replay(traces, regions, DEFAULT_EXPONENT, hours=hours)
        per_week[week] = summarise(result, hours)
        _added(totals, result)
    return {
        "clusters": [info.region for info in regions],
        "weeks": list(weeks),
        **summarise(totals, hours * len(weeks)),
        "per_week": per_week,
    }


def fleet_members() -> tuple[Member, ...]:
    """One member cluster per region of the benchmark fleet, named as the end-to-end ones are."""
    return tuple(Member(f"{cloud.value}-{region}", cloud, region) for cloud, region in REGIONS)


def member_regions(members: Sequence[Member]) -> dict[str, RegionInfo]:
    """Member clusters and their catalog regions."""
    catalog = RegionCatalog.load()
    found = {}
    for member in members:
        info = catalog.resolve(member.region, member.cloud)
        if info is None or info.zone is None:
            raise LookupError(f"the catalog does not map {member.region} to a grid zone")
        found[member.name] = info
    return found


class _Replay:
    """One week on the real Karmada: the decision each simulated hour, its writes timed."""

    def __init__(
        self,
        api: k8s.ApiClient,
        members: Mapping[str, k8s.ApiClient],
        namespace: str,
        traces: Traces,
        clusters: Mapping[str, RegionInfo],
    ) -> None:
        self._api = api
        self._members = members
        self._namespace = namespace
        self._traces = traces
        self._clusters = dict(clusters)
        self._now = traces.time(0)
        # Events and the decision annotation carry the simulated time, as the controller's
        # clock would.
        self._writer = KarmadaWriter(
            api, clock=lambda: self._now, event_namespace=SYSTEM_NAMESPACE, instance="bench"
        )
        self._ref = PolicyRef(PolicyKind.PROPAGATION, namespace, READ_POOL)
        self.weights: dict[str, int] = {}
        self.last: datetime | None = None
        self.totals: dict[str, float] = dict.fromkeys(
            ("emitted", "equal", "oracle", "changes", "moved"), 0.0
        )
        self.scheduled_s: list[float] = []
        self.ready_s: list[float] = []
        self.estimate_held = 0
        """Writes after which the real division was the controller's estimate."""
        self.estimate_missed: list[dict[str, Any]] = []
        """The others: weights, estimate and the scheduler's division."""

    async def hour(self, hour: int, division: dict[str, int]) -> dict[str, int]:
        """Decide at ``hour``, write and wait when the decision says so; charge the hour on the
        division the scheduler holds; the division."""
        self._now = now = self._traces.time(hour)
        names = sorted(self._clusters)
        regions = list(self._clusters.values())
        ranking = rank(
            snapshot_at(self._traces, regions, hour),
            {info.region for info in regions},
            now=now,
            horizon_hours=24,
        )
        scores = {score.region: score for score in ranking.scores}
        carbon = {
            name: ClusterCarbon(scores[info.region].expected_g_per_kwh, live=True)
            for name, info in self._clusters.items()
            if info.region in scores
        }
        decision = decide(
            eligible=names,
            carbon=carbon,
            current=self.weights,
            workloads=[REPLICAS],
            last_change=self.last,
            now=now,
            rules=Rules(),
        )
        if decision.writes:
            division = await self._write(decision.weights, carbon, now)
            estimate = {name: n for name, n in decision.replicas_after.items() if n}
            if division == estimate:
                self.estimate_held += 1
            else:
                self.estimate_missed.append(
                    {"weights": dict(decision.weights), "estimate": estimate, "karmada": division}
                )
            self.weights, self.last = dict(decision.weights), now
        actual = {
            name: self._traces.at(info.zone or "", hour) for name, info in self._clusters.items()
        }
        equal = divide(REPLICAS, dict.fromkeys(names, 1))
        _added(
            self.totals,
            {
                "emitted": sum(count * actual[name] for name, count in division.items()),
                "equal": sum(count * actual[name] for name, count in equal.items()),
                "oracle": REPLICAS * min(actual.values()),
            },
        )
        return division

    async def _write(
        self, weights: Mapping[str, int], carbon: Mapping[str, ClusterCarbon], now: datetime
    ) -> dict[str, int]:
        policy = await self._writer.read(self._ref)
        assert policy is not None, "the replay's policy is gone"
        ordered = sorted(carbon.items(), key=lambda item: (item[1].expected_g_per_kwh, item[0]))
        annotations = Annotations(
            ranking=",".join(f"{n}={round(c.expected_g_per_kwh)}" for n, c in ordered),
            decided_at=now,
            source="replay",
            weights=weights,
        )
        previous = division_of(await read_binding(self._api, self._namespace))
        began = time.perf_counter()
        await self._writer.apply(self._ref, apply_body(policy, annotations, weights=weights))
        binding = await eventually(
            f"the binding scheduled with {dict(weights)}",
            lambda: read_binding(self._api, self._namespace),
            lambda b: scheduled_with(b, weights),
            timeout=SETTLE_SECONDS,
        )
        self.scheduled_s.append(time.perf_counter() - began)
        division = division_of(binding)
        await eventually(
            f"the members running {division}, ready",
            lambda: running(self._members, self._namespace),
            division.__eq__,
            timeout=SETTLE_SECONDS,
        )
        self.ready_s.append(time.perf_counter() - began)
        self.totals["changes"] += 1
        self.totals["moved"] += moved(previous, division)
        return division


def scheduled_with(binding: Mapping[str, Any] | None, weights: Mapping[str, int]) -> bool:
    """Whether the scheduler has divided the binding under ``weights``."""
    if binding is None:
        return False
    placement = binding["spec"].get("placement") or {}
    generation = binding["metadata"].get("generation", 0)
    observed = (binding.get("status") or {}).get("schedulerObservedGeneration", 0)
    return weights_of(placement) == dict(weights) and observed >= generation


async def on_karmada(weeks: Sequence[str], hours: int, members: Sequence[Member]) -> dict[str, Any]:
    """The replay of ``hours`` hours of each of ``weeks`` on one real Karmada with ``members``,
    each week a fresh pool (equal weights to begin with) in a namespace of its own."""
    clusters = member_regions(members)
    karmada = Karmada(Binaries.locate(), members)
    # From this thread: the processes die with the thread that started them.
    karmada.start()
    resident_mib = _resident_mib(str(karmada.workdir))
    began = time.perf_counter()
    totals: dict[str, float] = {}
    model_totals: dict[str, float] = {}
    per_week: dict[str, Any] = {}
    scheduled_s: list[float] = []
    ready_s: list[float] = []
    estimate_held = 0
    estimate_missed: list[dict[str, Any]] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            api = await stack.enter_async_context(k8s.ApiClient(karmada.configuration()))
            member_apis = await stack.enter_async_context(member_clients(karmada))
            for week in weeks:
                start = datetime.fromisoformat(week).replace(tzinfo=UTC)
                traces = await build_traces(clusters.values(), start, hours + 72)
                replaying = await _week(api, member_apis, traces, clusters, hours)
                model = replay(traces, list(clusters.values()), DEFAULT_EXPONENT, hours=hours)
                per_week[week] = {
                    **summarise(replaying.totals, hours),
                    "model_same_clusters": summarise(model, hours),
                }
                _added(totals, replaying.totals)
                _added(model_totals, model)
                scheduled_s += replaying.scheduled_s
                ready_s += replaying.ready_s
                estimate_held += replaying.estimate_held
                estimate_missed += replaying.estimate_missed
            wall = time.perf_counter() - began
    finally:
        karmada.stop()
    return {
        "clusters": {name: info.region for name, info in clusters.items()},
        "weeks": list(weeks),
        "karmada_startup_s": round(karmada.startup_seconds or 0.0, 1),
        "karmada_processes_resident_mib": resident_mib,
        "replay_wall_s": round(wall, 1),
        **summarise(totals, hours * len(weeks)),
        "writes_matching_the_estimate": estimate_held,
        "writes_not_matching_the_estimate": estimate_missed,
        "change_to_scheduled_s": _spread(scheduled_s),
        "change_to_ready_s": _spread(ready_s),
        "model_same_clusters": summarise(model_totals, hours * len(weeks)),
        "per_week": per_week,
    }


async def _week(
    api: k8s.ApiClient,
    members: Mapping[str, k8s.ApiClient],
    traces: Traces,
    clusters: Mapping[str, RegionInfo],
    hours: int,
) -> _Replay:
    async with fresh_namespace(api, prefix="replay-") as namespace:
        await propagate_read_pool(api, namespace, REPLICAS, read_pool_policy())
        division = await eventually(
            "the pool divided by equal weights",
            lambda: running(members, namespace),
            lambda found: sum(found.values()) == REPLICAS,
            timeout=SETTLE_SECONDS,
        )
        replaying = _Replay(api, members, namespace, traces, clusters)
        for hour in range(hours):
            division = await replaying.hour(hour, division)
    return replaying


def _resident_mib(marker: str) -> float:
    """Resident memory of every process whose command line names ``marker`` (each of Karmada's
    and its members' processes takes a file under its work directory as an argument)."""
    total_kib = 0
    for proc in Path("/proc").iterdir():
        try:
            if marker not in (proc / "cmdline").read_bytes().decode(errors="replace"):
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue  # gone, or not ours to read
    return round(total_kib / 1024, 1)


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None}
    return {"median": round(median(values), 2), "max": round(max(values), 2)}


def verdicts(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, wanted in TARGETS.items():
        value = summary[name]
        at_most = name == "redivisions_per_dwell"
        met = value is not None and (value <= wanted if at_most else value >= wanted)
        target = f"{'<=' if at_most else '>='} {wanted:g}"
        out[name] = {"target": target, "value": value, "met": met}
    return out


async def run(quick: bool) -> dict[str, Any]:
    hours = QUICK_HOURS if quick else HOURS
    model = await fleet(WEEKS[:1] if quick else WEEKS, HOURS)
    if quick:
        real = await on_karmada(WEEKS[:1], hours, MEMBERS)
    else:
        real = await on_karmada(WEEKS, hours, fleet_members())
    return {
        "replicas": REPLICAS,
        "fleet": model,
        "karmada": real,
        "targets": {"fleet": verdicts(model), "karmada": verdicts(real)},
    }
