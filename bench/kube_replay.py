"""The carbon replay on a real control plane: the webhook's terms against the real kube-scheduler.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok run on loopback (the
end-to-end suite's ``ControlPlane``); the fleet's nodes are kwok nodes labelled like cloud VMs,
already partly filled by pinned background pods. The product's webhook app runs in this process
behind TLS and is registered with the API server by URL. Simulated time advances one hour per
step: the webhook's carbon snapshot and clock are set to what a refresher would have held at that
hour (``bench.traces.snapshot_at``, the same data the model policies see), pods whose life ended are
deleted, the hour's new read replicas are created through the API server, and the step ends once
the scheduler has bound each of them or marked it unschedulable. Where the scheduler bound each
pod, and from which hour, is what gets charged.

A Service selects the read replicas, as in a real read pool, so the scheduler's default topology
spreading applies to them. The scheduler runs its default profile; only its retry back-off for
unschedulable pods is shortened to one second, because an hour passes here in well under a second
and the default (up to 10 s) would hold a pending pod for many simulated hours after room freed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import yaml
from aiohttp import web
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from bench.replay import Binding, Fleet, PodSpec
from bench.servers import free_port, make_tls
from bench.traces import Traces, snapshot_at
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.demo import StaticInventory
from shared.cluster.inventory import Inventory
from shared.cluster.topology import node_from_manifest
from shared.cluster.workloads import EMPTY, Workloads
from shared.core.models import Cloud, RegionInfo
from tests.e2e.cluster import Binaries, ControlPlane
from tests.e2e.fleet import FakeNode, create_fake_nodes
from tests.e2e.kube import (
    as_body,
    fresh_namespace,
    mutating_webhook_configuration,
    registered_mutating_webhook,
)
from webhook.app import MUTATE_PATH
from webhook.app import create_app as create_webhook_app
from webhook.certs import KeyPair
from webhook.mutation import RANKING_ANNOTATION
from webhook.settings import WebhookSettings
from webhook.tls import load_pair, server_context

logger = logging.getLogger(__name__)

POLICIES: Final = ("none", "prefer", "require")
"""``none``: pods opt out, so the scheduler alone places them (the real carbon-agnostic case)."""

APP_LABEL: Final = "horizon-read"
BACKOFF_SECONDS: Final = 1
_POLL: Final = 0.05
_SETTLE_TIMEOUT: Final = 30.0
_INSTANCE: Final = {
    Cloud.AWS: "m6i.2xlarge",
    Cloud.GCP: "n2-standard-8",
    Cloud.AZURE: "Standard_D8s_v5",
}
_NODE_MEMORY_MIB: Final = 32 * 1024


class _ReplayControlPlane(ControlPlane):
    """The end-to-end control plane with the scheduler's retry back-off at one second."""

    def _scheduler_args(self) -> list[str]:
        config = self.workdir / "scheduler-config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {"kubeconfig": str(self.kubeconfig_path)},
                    "leaderElection": {"leaderElect": False},
                    "podInitialBackoffSeconds": BACKOFF_SECONDS,
                    "podMaxBackoffSeconds": BACKOFF_SECONDS,
                }
            )
        )
        return [*super()._scheduler_args(), f"--config={config}"]


@dataclass(frozen=True, slots=True)
class KubeRun:
    """What one policy's replay on the real scheduler produced."""

    policy: str
    bindings: Mapping[str, Binding]
    created: int
    mutated: int
    decision_points: int
    seconds: float


class _Clockwork:
    """The webhook's view of simulated time: the hour's snapshot and clock."""

    def __init__(self, traces: Traces, regions: Sequence[RegionInfo], seed: int) -> None:
        self._traces = traces
        self._regions = regions
        self._seed = seed
        self.hour = 0
        self._cached: tuple[int, CarbonSnapshot] | None = None

    def use(self, traces: Traces) -> None:
        self._traces = traces
        self.hour = 0
        self._cached = None

    def snapshot(self) -> CarbonSnapshot:
        if self._cached is None or self._cached[0] != self.hour:
            snapshot = snapshot_at(self._traces, self._regions, self.hour, seed=self._seed)
            self._cached = (self.hour, snapshot)
        return self._cached[1]

    def now(self) -> datetime:
        return self._traces.time(self.hour)


def _fake_nodes(fleet: Fleet) -> list[FakeNode]:
    nodes = []
    for index, node in enumerate(fleet.nodes):
        region = fleet.region(node.region)
        zone = f"{region.name}-{'abc'[index % 3]}"
        nodes.append(FakeNode(node.name, region.cloud, region.name, zone, _INSTANCE[region.cloud]))
    return nodes


def _container(name: str, cpu_millis: int, memory_mib: int) -> dict[str, Any]:
    return {
        "name": name,
        "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": f"{cpu_millis}m", "memory": f"{memory_mib}Mi"}},
    }


def _replica_manifest(pod: PodSpec, policy: str) -> dict[str, Any]:
    annotations = (
        {"stellar.org/carbon-aware": "disabled"}
        if policy == "none"
        else {"stellar.org/carbon-policy": policy}
    )
    memory = pod.cpu_millis * _NODE_MEMORY_MIB // 8000
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.name,
            "labels": {"stellar.org/role": "read-replica", "app": APP_LABEL},
            "annotations": annotations,
        },
        "spec": {
            "containers": [_container("horizon", pod.cpu_millis, memory)],
            "terminationGracePeriodSeconds": 0,
        },
    }


async def _background(api: k8s.ApiClient, namespace: str, fleet: Fleet) -> None:
    """Pin one pod per node requesting the node's background load (cpu and memory alike)."""
    core = k8s.CoreV1Api(api)
    for node in fleet.nodes:
        if node.background_millis <= 0:
            continue
        memory = node.background_millis * _NODE_MEMORY_MIB // node.cpu_millis
        await core.create_namespaced_pod(
            namespace,
            as_body(
                {
                    "metadata": {"name": f"load-{node.name}", "labels": {"app": "background"}},
                    "spec": {
                        "nodeName": node.name,
                        "containers": [_container("load", node.background_millis, memory)],
                        "terminationGracePeriodSeconds": 0,
                    },
                }
            ),
        )


@contextlib.asynccontextmanager
async def _webhook(
    clockwork: _Clockwork,
    nodes: Inventory,
    workloads: Callable[[], Workloads] = lambda: EMPTY,
) -> AsyncIterator[tuple[str, str]]:
    """The product's admission app on 127.0.0.1 over TLS; yields its URL and base64 CA bundle."""
    with tempfile.TemporaryDirectory(prefix="bench-kube-tls-") as directory:
        tls = make_tls(Path(directory))
        context = server_context()
        load_pair(
            context,
            KeyPair(
                (Path(directory) / "tls.crt").read_bytes(),
                (Path(directory) / "tls.key").read_bytes(),
            ),
        )
    app = create_webhook_app(
        WebhookSettings(),
        snapshot_source=clockwork.snapshot,
        inventory=nodes,
        clock=clockwork.now,
        workloads=workloads,
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{port}{MUTATE_PATH}", base64.b64encode(tls.ca_pem).decode()
    finally:
        await runner.cleanup()


def _scheduled(pod: k8s.V1Pod) -> str | None:
    return pod.spec.node_name or None


def _unschedulable(pod: k8s.V1Pod) -> bool:
    return any(
        c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        for c in pod.status.conditions or []
    )


def _required_regions(pod: k8s.V1Pod) -> set[str] | None:
    """The regions a pod's required node affinity allows; None: any."""
    affinity = pod.spec.affinity
    node_affinity = affinity.node_affinity if affinity else None
    required = (
        node_affinity.required_during_scheduling_ignored_during_execution if node_affinity else None
    )
    if required is None:
        return None
    allowed: set[str] = set()
    for term in required.node_selector_terms or []:
        for expression in term.match_expressions or []:
            if expression.key == "topology.kubernetes.io/region" and expression.operator == "In":
                allowed.update(expression.values or [])
    return allowed or None


async def _pods(core: k8s.CoreV1Api, namespace: str) -> dict[str, k8s.V1Pod]:
    listed = await core.list_namespaced_pod(namespace, label_selector=f"app={APP_LABEL}")
    return {p.metadata.name: p for p in listed.items if p.metadata.deletion_timestamp is None}


async def _replay(
    api: k8s.ApiClient,
    namespace: str,
    clockwork: _Clockwork,
    fleet: Fleet,
    pods: Sequence[PodSpec],
    hours: int,
    policy: str,
) -> KubeRun:
    core = k8s.CoreV1Api(api)
    region_of = {node.name: node.region for node in fleet.nodes}
    arriving: dict[int, list[PodSpec]] = {}
    ending: dict[int, list[PodSpec]] = {}
    for pod in pods:
        arriving.setdefault(pod.arrival, []).append(pod)
        ending.setdefault(pod.end, []).append(pod)
    bindings: dict[str, Binding] = {}
    alive: set[str] = set()
    mutated: set[str] = set()
    started = time.monotonic()
    for hour in range(hours):
        clockwork.hour = hour
        freed: set[str] = set()
        for pod in ending.get(hour, ()):
            if pod.name not in alive:
                continue
            alive.discard(pod.name)
            binding = bindings.get(pod.name)
            if binding is not None:
                freed.add(region_of[binding.node])
            with contextlib.suppress(ApiException):
                await core.delete_namespaced_pod(pod.name, namespace, grace_period_seconds=0)
        for pod in arriving.get(hour, ()):
            await core.create_namespaced_pod(namespace, as_body(_replica_manifest(pod, policy)))
            alive.add(pod.name)
        seen = await _settle(core, namespace, alive)
        waiting = [p for name, p in seen.items() if name in alive and not _scheduled(p)]
        if freed and any(
            (allowed := _required_regions(p)) is None or allowed & freed for p in waiting
        ):
            # Room opened where a waiting pod may go: give the scheduler its retry.
            await asyncio.sleep(BACKOFF_SECONDS + 0.3)
            seen = await _settle(core, namespace, alive)
        for name, observed in seen.items():
            node = _scheduled(observed)
            if name in alive and node and name not in bindings:
                bindings[name] = Binding(node, hour)
            if RANKING_ANNOTATION in (observed.metadata.annotations or {}):
                mutated.add(name)
    await _delete_all(core, namespace)
    return KubeRun(
        policy=policy,
        bindings=bindings,
        created=len(pods),
        mutated=len(mutated),
        decision_points=len([h for h in arriving if h < hours]),
        seconds=time.monotonic() - started,
    )


async def _settle(core: k8s.CoreV1Api, namespace: str, alive: set[str]) -> dict[str, k8s.V1Pod]:
    """Pods once every live one is bound or marked unschedulable (or the timeout passed)."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT
    while True:
        seen = await _pods(core, namespace)
        done = all(
            name in seen and (_scheduled(seen[name]) or _unschedulable(seen[name]))
            for name in alive
        )
        if done or time.monotonic() > deadline:
            if not done:
                logger.warning("pods still unsettled after %.0fs", _SETTLE_TIMEOUT)
            return seen
        await asyncio.sleep(_POLL)


async def _delete_all(core: k8s.CoreV1Api, namespace: str) -> None:
    for name in await _pods(core, namespace):
        with contextlib.suppress(ApiException):
            await core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    await _until_empty(core, namespace, time.monotonic() + 60)


async def _until_empty(core: k8s.CoreV1Api, namespace: str, deadline: float) -> None:
    """Poll until the namespace has no live read replicas (or the deadline passed)."""
    while True:
        if not await _pods(core, namespace) or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)


async def _probe_webhook(core: k8s.CoreV1Api, namespace: str) -> None:
    """Wait until the API server calls the webhook (configurations take a moment to apply)."""
    deadline = time.monotonic() + 60
    probe = PodSpec("webhook-probe", 0, 1)
    while True:
        created = await core.create_namespaced_pod(
            namespace, as_body(_replica_manifest(probe, "prefer"))
        )
        await core.delete_namespaced_pod(probe.name, namespace, grace_period_seconds=0)
        if RANKING_ANNOTATION in (created.metadata.annotations or {}):
            await _delete_all(core, namespace)
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the API server never called the webhook")
        await _until_empty(core, namespace, deadline)
        await asyncio.sleep(0.5)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One replayed window: its actual intensities and its read pool."""

    label: str
    traces: Traces
    pods: Sequence[PodSpec]


async def replay_on_kube(
    fleet: Fleet,
    scenarios: Sequence[Scenario],
    regions: Sequence[RegionInfo],
    hours: int,
    *,
    policies: Sequence[str] = POLICIES,
    seed: int = 0,
    binaries: Binaries | None = None,
) -> tuple[dict[tuple[str, str], KubeRun], float]:
    """Replay each scenario once per policy on one control plane.

    Returns the runs by (scenario label, policy) and the control plane's startup seconds.
    """
    if binaries is None:
        binaries = await asyncio.to_thread(Binaries.locate)
    control_plane = _ReplayControlPlane(binaries)
    await asyncio.to_thread(control_plane.start)
    try:
        await asyncio.to_thread(create_fake_nodes, control_plane, _fake_nodes(fleet))
        listed = await asyncio.to_thread(control_plane.request, "GET", "/api/v1/nodes")
        inventory = StaticInventory(node_from_manifest(item) for item in listed["items"])
        clockwork = _Clockwork(scenarios[0].traces, regions, seed)
        runs: dict[tuple[str, str], KubeRun] = {}
        async with k8s.ApiClient(control_plane.configuration()) as api:
            core = k8s.CoreV1Api(api)
            async with (
                fresh_namespace(api, "bench-background-") as background,
                _webhook(clockwork, inventory) as (url, ca_bundle),
            ):
                await _background(api, background, fleet)
                configuration = mutating_webhook_configuration(
                    "stellar-carbon-bench.stellar.org",
                    url,
                    ca_bundle,
                    object_selector={"matchLabels": {"stellar.org/role": "read-replica"}},
                )
                async with registered_mutating_webhook(api, configuration):
                    for scenario, policy in itertools.product(scenarios, policies):
                        clockwork.use(scenario.traces)
                        async with fresh_namespace(api, f"bench-{policy}-") as namespace:
                            await core.create_namespaced_service(
                                namespace,
                                as_body(
                                    {
                                        "metadata": {"name": APP_LABEL},
                                        "spec": {
                                            "selector": {"app": APP_LABEL},
                                            "ports": [{"port": 8000}],
                                        },
                                    }
                                ),
                            )
                            await _probe_webhook(core, namespace)
                            run = await _replay(
                                api, namespace, clockwork, fleet, scenario.pods, hours, policy
                            )
                            runs[scenario.label, policy] = run
                            logger.info(
                                "kube replay %s/%s took %.0fs", scenario.label, policy, run.seconds
                            )
        return runs, control_plane.startup_seconds or 0.0
    finally:
        await asyncio.to_thread(control_plane.stop)
