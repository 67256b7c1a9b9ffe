"""The operator's read pools on the real kube-scheduler, the webhook sizing them from live watches.

The model replay (``bench.readpool``) on a real control plane (``bench.kube_replay``'s: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler with a one-second retry back-off, kwok):

* fleet: the benchmark's fourteen regions in the model's two shapes (``bench.readpool.SHAPES``),
  kwok nodes with the model's zones, each partly filled by a pinned background pod;
* the StellarNode's main pod: the operator's one-replica StatefulSet (``tests/e2e/operator.py``),
  pinned to the node the model puts it on (the least allocated), so the oracle is comparable;
* the read pool: the operator's StatefulSet as written (``OrderedReady``, hostname
  anti-affinity, hostname and zone ``DoNotSchedule`` spreads counting the main pod); its replicas
  follow the model's HPA curve (``replicas_at``, set on the scale subresource: the HPA itself is
  not created, as it would fight the replay), and a bound pod whose life (``bench.readpool.lives``,
  drawn in creation order as the model draws them) has ended is deleted, so the StatefulSet
  controller recreates it through admission;
* the webhook: the product's app in this process behind TLS, with ``KubeInventory`` and
  ``KubeWorkloads`` watching this control plane (every pod, as with
  ``STELLAR_CARBON_WEBHOOK_WATCH_ALL_PODS``, since background pods share the nodes), so it sizes
  each pod's required set from the live StatefulSet and bound pods as in production; its carbon
  snapshot and clock follow the simulated hour.

Arms: ``agnostic`` (the StatefulSet annotated ``stellar.org/carbon-aware: disabled``), ``prefer``
(the pod template annotated ``stellar.org/carbon-policy: prefer``) and ``default`` (the template
as written). The oracle is the model's (``bench.readpool``, same week, shape, pool and lives).
Each hour ends when every wanted ordinal is bound in order, or one is marked unschedulable.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from bench.carbon import FORECAST_HOURS, HOURS, SEED, WEEKS, fleet_regions
from bench.kube_replay import (
    BACKOFF_SECONDS,
    _background,
    _Clockwork,
    _probe_webhook,
    _ReplayControlPlane,
    _required_regions,
    _webhook,
)
from bench.pool_ledger import Ledger, PodState, blamed_on_webhook, served_nodes, settled
from bench.readpool import (
    POOLS,
    SHAPES,
    hard_rules,
    lives,
    main_node,
    operator_pool,
    policies,
    replicas_at,
    run_pool,
)
from bench.replay import (
    Decision,
    Outcome,
    build_fleet,
    fraction_of_oracle,
    reduction,
    replica_region,
)
from bench.spread import ZonedFleet, place_spread, zoned
from bench.traces import Traces, build_traces
from shared.cluster.kube import KubeInventory, KubeWorkloads
from shared.core.models import Cloud
from tests.e2e.cluster import Binaries
from tests.e2e.fleet import FakeNode, create_fake_nodes
from tests.e2e.kube import (
    as_body,
    fresh_namespace,
    mutating_webhook_configuration,
    registered_mutating_webhook,
)
from tests.e2e.operator import (
    NODE_NAME,
    READ_POOL,
    READ_POOL_SELECTOR,
    main_statefulset,
    read_statefulset,
)
from webhook.mutation import RANKING_ANNOTATION

logger = logging.getLogger(__name__)

ARMS: Final = ("agnostic", "prefer", "default")
KUBE_WEEKS: Final = 2
"""Weeks replayed (winter and spring); the model replays all four."""
QUICK_HOURS: Final = 24
MAIN_SELECTOR: Final = f"app.kubernetes.io/instance={NODE_NAME},!stellar.org/role"
PARALLEL: Final = 4
"""Control planes at once: one per (shape, week), each mostly waiting on controllers."""
_POLL: Final = 0.05
_SETTLE_TIMEOUT: Final = 30.0
_INSTANCE: Final = {
    Cloud.AWS: "m6i.2xlarge",
    Cloud.GCP: "n2-standard-8",
    Cloud.AZURE: "Standard_D8s_v5",
}


@dataclass(frozen=True, slots=True)
class PoolRun:
    """One arm's replay of one pool for one week."""

    outcome: Outcome
    pending: int
    """Pods the scheduler marked unschedulable at the end of some hour (any reason)."""
    webhook_pending: int
    """Those the webhook's required term kept Pending (``pool_ledger.blamed_on_webhook``)."""
    mutated: int
    seconds: float


def _fake_nodes(model: ZonedFleet) -> list[FakeNode]:
    fleet = model.fleet
    return [
        FakeNode(
            node.name,
            fleet.region(node.region).cloud,
            node.region,
            model.zones[node.name],
            _INSTANCE[fleet.region(node.region).cloud],
        )
        for node in fleet.nodes
    ]


def _main_manifest(node: str) -> dict[str, Any]:
    manifest = main_statefulset()
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    return manifest


def _pool_manifest(arm: str, replicas: int) -> dict[str, Any]:
    manifest = copy.deepcopy(read_statefulset(replicas))
    if arm == "agnostic":
        manifest["metadata"].setdefault("annotations", {})["stellar.org/carbon-aware"] = "disabled"
    elif arm == "prefer":
        template = manifest["spec"]["template"]["metadata"]
        template.setdefault("annotations", {})["stellar.org/carbon-policy"] = "prefer"
    return manifest


def _state(pod: k8s.V1Pod) -> PodState:
    scheduled = next(
        (c for c in pod.status.conditions or [] if c.type == "PodScheduled"),
        None,
    )
    unschedulable = bool(
        scheduled and scheduled.status == "False" and scheduled.reason == "Unschedulable"
    )
    return PodState(
        pod.metadata.uid,
        pod.spec.node_name or None,
        unschedulable,
        (scheduled.message or "") if scheduled else "",
    )


async def _pool_pods(
    core: k8s.CoreV1Api, namespace: str, gone: set[str]
) -> dict[int, tuple[PodState, k8s.V1Pod]]:
    listed = await core.list_namespaced_pod(namespace, label_selector=READ_POOL_SELECTOR)
    pods: dict[int, tuple[PodState, k8s.V1Pod]] = {}
    for pod in listed.items:
        if pod.metadata.deletion_timestamp is not None or pod.metadata.uid in gone:
            continue
        pods[int(pod.metadata.name.rsplit("-", 1)[1])] = (_state(pod), pod)
    return pods


async def _settle(
    core: k8s.CoreV1Api, namespace: str, replicas: int, gone: set[str]
) -> tuple[dict[int, tuple[PodState, k8s.V1Pod]], bool]:
    """The pool's pods once settled (``pool_ledger.settled``), and whether it did in time."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT
    while True:
        pods = await _pool_pods(core, namespace, gone)
        if settled({o: s for o, (s, _) in pods.items()}, replicas):
            return pods, True
        if time.monotonic() > deadline:
            logger.warning("%s: pool unsettled after %.0fs", namespace, _SETTLE_TIMEOUT)
            return pods, False
        await asyncio.sleep(_POLL)


async def _main_bound(core: k8s.CoreV1Api, namespace: str) -> None:
    """Wait for the main pod to be bound, so the pool's first pods count it, as in the model."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        listed = await core.list_namespaced_pod(namespace, label_selector=MAIN_SELECTOR)
        if any(pod.spec.node_name for pod in listed.items):
            return
        await asyncio.sleep(_POLL)
    raise RuntimeError(f"{namespace}: the main pod was never bound")


def _fits_without_required(
    model: ZonedFleet, main: str, bound: Sequence[str], cpu_millis: int
) -> bool:
    """Whether the scheduler's filters (``bench.spread``) pass some node for one more pool pod
    with no required region term, given the pool's pods bound now and the main pod."""
    matching = Counter(bound)
    matching[main] += 1
    used = {node: count * cpu_millis for node, count in matching.items()}
    rules = hard_rules(operator_pool())
    return place_spread(Decision(), model, rules, matching, used, cpu_millis) is not None


async def _replay_pool(
    api: k8s.ApiClient,
    namespace: str,
    clockwork: _Clockwork,
    model: ZonedFleet,
    traces: Traces,
    size: int,
    arm: str,
    hours: int,
) -> PoolRun:
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    fleet = model.fleet
    main = main_node(fleet)
    cpu_millis = operator_pool().cpu_millis
    life = lives(size, seed=SEED)
    ledger = Ledger(fleet, traces)
    ends: dict[str, int] = {}  # pod uid → hour its life ends
    by_ordinal: dict[int, PodState] = {}
    pending: set[str] = set()
    blamed: set[str] = set()
    mutated: set[str] = set()
    never = 0
    gone: set[str] = set()
    pods: dict[int, tuple[PodState, k8s.V1Pod]] = {}
    done = True
    started = time.monotonic()
    await apps.create_namespaced_stateful_set(namespace, as_body(_main_manifest(main)))
    await _main_bound(core, namespace)
    replicas = replicas_at(size, 0)
    await apps.create_namespaced_stateful_set(namespace, as_body(_pool_manifest(arm, replicas)))
    for hour in range(hours):
        clockwork.hour = hour
        freed = False
        acted = hour == 0 or not done
        wanted = replicas_at(size, hour)
        if wanted != replicas:
            freed = wanted < replicas
            acted = True
            replicas = wanted
            await apps.patch_namespaced_stateful_set_scale(
                READ_POOL, namespace, as_body({"spec": {"replicas": replicas}})
            )
        for ordinal, state in by_ordinal.items():
            if ordinal < replicas and state.node is not None and ends[state.uid] <= hour:
                # A restart (rollout, eviction, drain): the controller recreates the ordinal.
                gone.add(state.uid)
                freed = acted = True
                await _delete(core, namespace, f"{READ_POOL}-{ordinal}", state.uid)
        if acted:  # otherwise nothing changed since the last hour settled: nothing to wait for
            pods, done = await _settle(core, namespace, replicas, gone)
        if freed and any(s.unschedulable for s, _ in pods.values()):
            # Room opened where a Pending pod may go: give the scheduler its retry.
            await asyncio.sleep(BACKOFF_SECONDS + 0.3)
            pods, done = await _settle(core, namespace, replicas, gone)
        current = {ordinal: state for ordinal, (state, _) in pods.items()}
        for ordinal, state in by_ordinal.items():
            replaced = current.get(ordinal)
            if (replaced is None or replaced.uid != state.uid) and state.node is None:
                never += 1  # scaled away or replaced before it was ever bound
        for ordinal in sorted(current):  # lives are drawn in creation order, as in the model
            state, pod = pods[ordinal]
            if state.uid not in ends:
                ends[state.uid] = min(hours, hour + life())
            if RANKING_ANNOTATION in (pod.metadata.annotations or {}):
                mutated.add(state.uid)
        bound = [s.node for s in current.values() if s.node is not None]
        for state, pod in pods.values():
            if not state.unschedulable or state.node is not None:
                continue
            pending.add(state.uid)
            if blamed_on_webhook(
                state,
                required_regions=_required_regions(pod) is not None,
                fits_without=_fits_without_required(model, main, bound, cpu_millis),
            ):
                blamed.add(state.uid)
        ledger.charge(hour, replicas, served_nodes(current, replicas))
        by_ordinal = current
    never += sum(1 for s in by_ordinal.values() if s.node is None)
    await _teardown(core, apps, namespace)
    return PoolRun(
        outcome=ledger.outcome(arm, pods=len(ends), never_served=never),
        pending=len(pending),
        webhook_pending=len(blamed),
        mutated=len(mutated),
        seconds=time.monotonic() - started,
    )


async def _delete(core: k8s.CoreV1Api, namespace: str, name: str, uid: str) -> None:
    options = k8s.V1DeleteOptions(
        grace_period_seconds=0, preconditions=k8s.V1Preconditions(uid=uid)
    )
    with contextlib.suppress(ApiException):
        await core.delete_namespaced_pod(name, namespace, body=options)


async def _teardown(core: k8s.CoreV1Api, apps: k8s.AppsV1Api, namespace: str) -> None:
    """The StatefulSets orphan their pods, which go at once: the next arm starts on empty nodes."""
    await apps.delete_collection_namespaced_stateful_set(namespace, propagation_policy="Orphan")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = await core.list_namespaced_pod(namespace)
        if not listed.items:
            return
        for pod in listed.items:
            if pod.metadata.deletion_timestamp is None:
                await _delete(core, namespace, pod.metadata.name, pod.metadata.uid)
        await asyncio.sleep(0.2)
    logger.warning("%s: pods left after teardown", namespace)


@dataclass(frozen=True, slots=True)
class Week:
    label: str
    traces: Traces


async def _replay_week(
    binaries: Binaries,
    model: ZonedFleet,
    week: Week,
    hours: int,
) -> tuple[dict[tuple[int, str], PoolRun], float]:
    """Every pool × arm of one week on a control plane of its own holding the shape's fleet."""
    infos = fleet_regions()
    control_plane = _ReplayControlPlane(binaries)
    await asyncio.to_thread(control_plane.start)
    runs: dict[tuple[int, str], PoolRun] = {}
    try:
        await asyncio.to_thread(create_fake_nodes, control_plane, _fake_nodes(model))
        clockwork = _Clockwork(week.traces, infos, SEED)
        async with k8s.ApiClient(control_plane.configuration()) as api:
            core = k8s.CoreV1Api(api)
            inventory = KubeInventory(api)
            # Every pod, as STELLAR_CARBON_WEBHOOK_WATCH_ALL_PODS does: the fleet's nodes are
            # shared with background pods, whose requests the room model must count.
            workloads = KubeWorkloads(api, pod_selectors=())
            await inventory.start()
            await workloads.start()
            try:
                if not (await inventory.wait_synced(60) and await workloads.wait_synced(60)):
                    raise RuntimeError("the webhook's watches never listed the cluster")
                async with (
                    fresh_namespace(api, "bench-background-") as background,
                    _webhook(clockwork, inventory, lambda: workloads.state) as (url, ca_bundle),
                ):
                    await _background(api, background, model.fleet)
                    configuration = mutating_webhook_configuration(
                        "stellar-carbon-bench.stellar.org",
                        url,
                        ca_bundle,
                        object_selector={"matchLabels": {"stellar.org/role": "read-replica"}},
                    )
                    async with registered_mutating_webhook(api, configuration):
                        async with fresh_namespace(api, "bench-probe-") as probe:
                            await _probe_webhook(core, probe)
                        for size, arm in itertools.product(POOLS, ARMS):
                            clockwork.hour = 0
                            async with fresh_namespace(api, f"pool-{arm}-") as namespace:
                                run = await _replay_pool(
                                    api, namespace, clockwork, model, week.traces, size, arm, hours
                                )
                            runs[size, arm] = run
                            logger.info(
                                "readpool-kube %d nodes, %s, pool %d, %s: %.0fs, %d pending "
                                "(%d by the webhook)",
                                len(model.fleet.nodes),
                                week.label,
                                size,
                                arm,
                                run.seconds,
                                run.pending,
                                run.webhook_pending,
                            )
            finally:
                await inventory.stop()
                await workloads.stop()
        return runs, control_plane.startup_seconds or 0.0
    finally:
        await asyncio.to_thread(control_plane.stop)


def describe(
    real: Mapping[str, Outcome],
    model: Mapping[str, Outcome],
    pending: Mapping[str, tuple[int, int]],
) -> dict[str, dict[str, Any]]:
    """Rows per arm: the real runs against the real agnostic, the model's oracle for the column
    "of oracle"; the model's own rows for comparison."""
    baseline, oracle = real["agnostic"], model["oracle"]
    rows: dict[str, dict[str, Any]] = {}
    for name, outcome in real.items():
        rows[name] = {
            "reduction_vs_agnostic": _r(reduction(outcome, baseline)),
            "fraction_of_oracle": _r(fraction_of_oracle(outcome, baseline, oracle)),
            "unserved_replica_hours": outcome.unserved_hours,
            "unserved_beyond_agnostic": max(0, outcome.unserved_hours - baseline.unserved_hours),
            "served_replica_hours": outcome.served_hours,
            "pods": outcome.pods,
            "never_bound_pods": outcome.never_served,
            "pending_pods": pending[name][0],
            "pending_because_of_webhook": pending[name][1],
            "g_per_replica_hour": _r(outcome.g_per_replica_hour),
        }
    rows["oracle"] = {
        "reduction_vs_agnostic": _r(reduction(oracle, baseline)),
        "fraction_of_oracle": 1.0,
        "unserved_replica_hours": oracle.unserved_hours,
        "unserved_beyond_agnostic": max(0, oracle.unserved_hours - baseline.unserved_hours),
        "served_replica_hours": oracle.served_hours,
        "pods": oracle.pods,
        "never_bound_pods": oracle.never_served,
        "pending_pods": None,
        "pending_because_of_webhook": None,
        "g_per_replica_hour": _r(oracle.g_per_replica_hour),
    }
    model_base = model["agnostic"]
    rows["model/default"] = {
        "reduction_vs_agnostic": _r(reduction(model["pool/replicas"], model_base)),
        "fraction_of_oracle": _r(fraction_of_oracle(model["pool/replicas"], model_base, oracle)),
        "unserved_replica_hours": model["pool/replicas"].unserved_hours,
        "unserved_beyond_agnostic": max(
            0, model["pool/replicas"].unserved_hours - model_base.unserved_hours
        ),
        "served_replica_hours": model["pool/replicas"].served_hours,
        "pods": model["pool/replicas"].pods,
        "never_bound_pods": model["pool/replicas"].never_served,
        "pending_pods": None,
        "pending_because_of_webhook": None,
        "g_per_replica_hour": _r(model["pool/replicas"].g_per_replica_hour),
    }
    return rows


def _r(value: float) -> float | None:
    return None if value != value else round(value, 4)  # NaN: no oracle savings to share


ORACLE_TARGET: Final = 0.95


def verdicts(result: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's targets for the default arm, per shape and pool."""
    cases = {}
    for shape, entry in result["shapes"].items():
        for size, rows in entry["pools"].items():
            row = rows["default"]
            fraction = row["fraction_of_oracle"]
            cases[f"{shape}/{size}"] = {
                "fraction_of_oracle": fraction,
                "oracle_met": fraction is not None and fraction >= ORACLE_TARGET,
                "unserved_beyond_agnostic": row["unserved_beyond_agnostic"],
                "pending_because_of_webhook": row["pending_because_of_webhook"],
                "met": bool(
                    fraction is not None
                    and fraction >= ORACLE_TARGET
                    and row["unserved_beyond_agnostic"] == 0
                    and row["pending_because_of_webhook"] == 0
                ),
            }
    return cases


async def run(quick: bool) -> dict[str, Any]:
    """Both shapes × pools 3, 6, 20 × the three arms on the real scheduler, two weeks (one day of
    one week with ``quick``), each against the model's oracle on the same events. Each (shape,
    week) gets a control plane of its own; they run side by side, as each mostly waits on the
    StatefulSet controller and the scheduler."""
    started = time.monotonic()
    binaries = await asyncio.to_thread(Binaries.locate)
    infos = fleet_regions()
    hours = QUICK_HOURS if quick else HOURS
    labels = WEEKS[:1] if quick else WEEKS[:KUBE_WEEKS]
    weeks = []
    for label in labels:
        start = datetime.fromisoformat(label).replace(tzinfo=UTC)
        traces = await build_traces(infos, start, HOURS + FORECAST_HOURS, seed=SEED)
        weeks.append(Week(label, traces))
    models = {}
    for shape, per_zone in SHAPES.items():
        fleet = build_fleet(
            [replica_region(info) for info in infos], nodes_per_region=3 * per_zone, seed=SEED
        )
        models[shape] = zoned(fleet, nodes_per_zone=per_zone)
    gate = asyncio.Semaphore(PARALLEL)

    async def replay(shape: str, week: Week) -> tuple[dict[tuple[int, str], PoolRun], float]:
        async with gate:
            return await _replay_week(binaries, models[shape], week, hours)

    cases = list(itertools.product(SHAPES, weeks))
    replayed = await asyncio.gather(*(replay(shape, week) for shape, week in cases))
    by_case = {
        (shape, week.label): runs for (shape, week), (runs, _) in zip(cases, replayed, strict=True)
    }
    pool = operator_pool()
    result: dict[str, Any] = {
        "weeks": list(labels),
        "hours_per_week": hours,
        "control_plane_startup_s": [round(startup, 1) for _, startup in replayed],
        "shapes": {},
    }
    for shape, model in models.items():
        rows: dict[str, Any] = {}
        for size in POOLS:
            real: dict[str, Outcome] = {}
            pending: dict[str, tuple[int, int]] = {}
            modelled: dict[str, Outcome] = {}
            for week in weeks:
                for arm in ARMS:
                    kube_run = by_case[shape, week.label][size, arm]
                    real[arm] = _merge(real.get(arm), kube_run.outcome)
                    before = pending.get(arm, (0, 0))
                    pending[arm] = (
                        before[0] + kube_run.pending,
                        before[1] + kube_run.webhook_pending,
                    )
                decide = policies(model, week.traces, infos, pool)
                for name in ("agnostic", "pool/replicas", "oracle"):
                    outcome = run_pool(
                        name, decide[name], model, pool, week.traces, size, hours=hours
                    )
                    modelled[name] = _merge(modelled.get(name), outcome)
            rows[str(size)] = describe(real, modelled, pending)
        result["shapes"][shape] = {
            "nodes": len(model.fleet.nodes),
            "replay_seconds": round(
                sum(r.seconds for w in weeks for r in by_case[shape, w.label].values()), 1
            ),
            "pools": rows,
        }
    result["targets"] = verdicts(result)
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _merge(total: Outcome | None, outcome: Outcome) -> Outcome:
    return outcome if total is None else total.merged(outcome)


def table(result: Mapping[str, Any]) -> list[str]:
    """Markdown rows: shape, pool, arm, reduction, fraction of the oracle, unserved, Pending."""
    lines = [
        "| shape | pool | arm | reduction vs agnostic | of oracle | unserved h "
        "(beyond agnostic) | pods Pending (because of the webhook) |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, entry in result["shapes"].items():
        for size, rows in entry["pools"].items():
            for arm, row in rows.items():
                pending = (
                    "–"
                    if row["pending_pods"] is None
                    else f"{row['pending_pods']} ({row['pending_because_of_webhook']})"
                )
                lines.append(
                    f"| {shape} | {size} | {arm} | {_pct(row['reduction_vs_agnostic'])} | "
                    f"{_pct(row['fraction_of_oracle'])} | {row['unserved_replica_hours']} "
                    f"({row['unserved_beyond_agnostic']}) | {pending} |"
                )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
