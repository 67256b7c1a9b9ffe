"""Admission under load through the real API server, and a certificate rotation and rolling
restart of the webhook while pods are being created.

On the end-to-end control plane (etcd, kube-apiserver with ``--enable-aggregator-routing``,
controller manager, scheduler, kwok with eighteen nodes in nine cloud regions) the webhook runs as
the chart deploys it: two ``python -m webhook`` processes behind a Service, registered by
``clientConfig.service``, self-managed TLS (``tests.e2e.rollout``). Pods are the Stellar
operator's read replicas (its StatefulSet's pod template as a bare pod), created through the API
server by ``bench.pod_load``.

Arms, interleaved round by round (the order alternates): ``without`` (no webhook configuration
registered), ``floor`` (``FloorWebhook``: two ``bench.serve floor`` processes behind a Service of
their own that answer every review with the patch the product's webhook gives the pod, so the API
server does all it does for the product, calling over TLS and applying the same patch, while the
webhook only parses and answers) and ``with`` (the configuration the webhook injected its CA into,
registered again). ``with`` minus ``without`` is what the webhook costs pod creation; ``with``
minus ``floor`` the part of it that is the product's own, the rest being any mutating webhook's.
Before each measured run the arm is checked in effect with dry-run creates. Each run gets a fresh
namespace; afterwards every pod is read back and counted as patched or not, then all are deleted.

The pods name a scheduler that does not run. Admission does not look at it, and it spares the
machine the real scheduler's churn over thousands of pods its hostname anti-affinity leaves
unschedulable (eighteen nodes), which would otherwise dominate the load and land unevenly on the
arms.

The rotation and roll: under the steady load, the stored serving certificate is aged so it is due
for renewal (``WebhookDeployment.age_serving_certificate``); the replicas renew and reload it;
then the Deployment rolls (``maxSurge: 1, maxUnavailable: 0``: new replica ready and listed,
then the old one gets SIGTERM and its endpoint turns terminating ``ENDPOINT_LAG`` later). Every
create must succeed and every pod must carry the webhook's patch: with ``failurePolicy: Ignore``
a webhook call that fails during the roll admits the pod unpatched, and that pod's placement is
lost. Two arms (``ROLL_ARMS``), alternating: replicas that stop accepting at SIGTERM
(``no-drain``) and the product's default drain (``drain``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s

from bench.loadgen import percentile
from bench.pod_load import Creations, Patched, PodCreations
from bench.servers import Server, cpu_seconds, running
from tests.e2e.carbon_api import mock_carbon_env
from tests.e2e.cluster import ApiStatusError, Binaries, ControlPlane
from tests.e2e.fleet import create_fake_nodes, fake_fleet
from tests.e2e.kube import as_body, fresh_namespace, wait_for_admission
from tests.e2e.operator import read_statefulset
from tests.e2e.rollout import (
    CONFIG_NAME,
    WebhookDeployment,
    create_service,
    endpoint_slice,
    host_address,
    wait_for,
)
from tests.e2e.services import RANKING_ANNOTATION, create_namespace
from webhook.certs import generate_ca, issue_serving
from webhook.mutation import DECIDED_AT_ANNOTATION
from webhook.review import build_review

logger = logging.getLogger(__name__)

RATE: Final = 20.0
"""Pods per second of the steady load: a busy cluster's controllers at work, and what this
two-core machine sustains beside two webhook replicas starting during a roll."""
STEADY_SECONDS: Final = {"full": 30.0, "quick": 10.0}
BURST: Final = 1000
BURST_CONCURRENCY: Final = 32
"""Workers of a burst; the API server's webhook client then keeps about as many connections."""
ROUNDS: Final = {"full": 3, "quick": 1}
WARM_UP: Final = 40
"""Creates before each measured run (not timed): connections up, caches warm."""
ARMS: Final = ("without", "floor", "with")
SELECTED: Final = "bench.stellar.org/carbon"
"""Label of the namespaces the webhook is registered for."""
UNSERVED_SCHEDULER: Final = "stellar-carbon-bench-unscheduled"
ROTATION_CHECK_SECONDS: Final = 1.0
"""How often each replica checks its Secret (the chart's default is an hour)."""
TARGET_ADDED_P99_MS: Final = 2.0
ENDPOINT_LAG: Final = 1.0
"""Seconds from an old replica's SIGTERM to its endpoint turning not ready during the roll."""
SHUTDOWN_DELAY: Final = "STELLAR_CARBON_WEBHOOK_SHUTDOWN_DELAY"
ROLL_ARMS: Final = {"no-drain": {SHUTDOWN_DELAY: "0"}, "drain": {}}
"""The roll with replicas that stop accepting at SIGTERM, and with the product's default drain."""


def read_replica_pod() -> dict[str, Any]:
    """The operator's read-pool pod template as a bare pod, for a scheduler that does not run."""
    template = read_statefulset(1)["spec"]["template"]
    spec = dict(template["spec"])
    spec["schedulerName"] = UNSERVED_SCHEDULER
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "read", "labels": dict(template["metadata"]["labels"])},
        "spec": spec,
    }


def _patched(pod: k8s.V1Pod) -> bool:
    return RANKING_ANNOTATION in (pod.metadata.annotations or {})


FLOOR_SERVICE: Final = "stellar-carbon-floor"
FLOOR_CONFIG: Final = "stellar-carbon-floor"
FLOOR_REPLICAS: Final = 2


class FloorWebhook:
    """``bench.serve floor`` as a mutating webhook: ``FLOOR_REPLICAS`` processes on this machine's
    address behind a Service of their own (one EndpointSlice each, as ``WebhookDeployment``
    lists the product's replicas), serving a certificate for that Service from a CA of their
    own, answering every review with one given patch."""

    def __init__(self, control_plane: ControlPlane, namespace: str, directory: Path) -> None:
        self.control_plane = control_plane
        self.namespace = namespace
        self.directory = directory
        self.address = host_address()
        self.servers: list[Server] = []
        self.decided_at = ""
        """The decision time the patch stamps on pods: tells its pods from the webhook's."""
        now = datetime.now(UTC)
        self._ca = generate_ca(common_name="stellar-carbon-bench-floor", now=now, days=1)
        pair = issue_serving(
            self._ca, dns_names=[f"{FLOOR_SERVICE}.{namespace}.svc"], now=now, days=1
        )
        (directory / "tls.crt").write_bytes(pair.cert_pem)
        (directory / "tls.key").write_bytes(pair.key_pem)

    @contextlib.asynccontextmanager
    async def serving(self, patch: str) -> AsyncIterator[FloorWebhook]:
        """The replicas, answering with ``patch`` (a ``response.patch`` text), listed."""
        (self.directory / "patch").write_text(patch)
        ops = orjson.loads(base64.b64decode(patch))
        self.decided_at = next(
            op["value"].get(DECIDED_AT_ANNOTATION, "")
            for op in ops
            if op["path"].startswith("/metadata/annotations") and isinstance(op["value"], dict)
        )
        arguments = [
            "--cert-dir",
            str(self.directory),
            "--patch-file",
            str(self.directory / "patch"),
        ]
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(FLOOR_REPLICAS):
                server = running("floor", arguments, host=self.address)
                self.servers.append(await stack.enter_async_context(server))
            await asyncio.to_thread(self._list)
            yield self

    def _list(self) -> None:
        create_service(self.control_plane, self.namespace, FLOOR_SERVICE)
        for index, server in enumerate(self.servers):
            self.control_plane.request(
                "POST",
                f"/apis/discovery.k8s.io/v1/namespaces/{self.namespace}/endpointslices",
                endpoint_slice(
                    FLOOR_SERVICE, f"{FLOOR_SERVICE}-{index}", self.address, server.port, ready=True
                ),
            )

    def configuration(self, product: dict[str, Any]) -> dict[str, Any]:
        """The product's configuration (``product``), pointed at the floor instead."""
        (webhook,) = product["webhooks"]
        return {
            **product,
            "metadata": {"name": FLOOR_CONFIG},
            "webhooks": [
                {
                    **webhook,
                    "name": "pods.floor.bench.stellar.org",
                    "clientConfig": {
                        "service": {
                            "namespace": self.namespace,
                            "name": FLOOR_SERVICE,
                            "path": "/mutate",
                            "port": 443,
                        },
                        "caBundle": base64.b64encode(self._ca.cert_pem).decode(),
                    },
                }
            ],
        }

    def patched(self, pod: k8s.V1Pod) -> bool:
        """``pod`` carries the floor's patch (not the webhook's)."""
        return (pod.metadata.annotations or {}).get(DECIDED_AT_ANNOTATION) == self.decided_at

    def cpu_seconds(self) -> float:
        return sum(server.cpu_seconds() for server in self.servers)


async def product_patch(deployment: WebhookDeployment, namespace: str) -> str:
    """The ``response.patch`` a replica of the product's webhook gives the read-pool pod."""
    replica = deployment.replicas[0]
    review = build_review(read_replica_pod(), namespace=namespace, uid="bench-floor-patch")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"https://{replica.address}:{replica.port}/mutate",
            data=orjson.dumps(review),
            headers={"Content-Type": "application/json"},
            ssl=False,  # only to read the patch; the API server verifies the replicas
        ) as response,
    ):
        answer = orjson.loads(await response.read())
    patch: str = answer["response"]["patch"]
    return patch


class _Bench:
    """The control plane, the webhook's Deployment and the configuration to register or not."""

    def __init__(
        self, control_plane: ControlPlane, deployment: WebhookDeployment, floor: FloorWebhook
    ) -> None:
        self.control_plane = control_plane
        self.deployment = deployment
        self.floor = floor
        self.configuration: dict[str, Any] = {}

    async def register(self, api: k8s.ApiClient) -> None:
        """The configuration by Service, once; the webhook injects its CA into it."""
        configuration = self.deployment.configuration(
            namespace_selector={"matchLabels": {SELECTED: "enabled"}}
        )
        await asyncio.to_thread(self.deployment.register, configuration)
        await asyncio.to_thread(
            wait_for,
            "caBundle injected",
            lambda: bool(
                self.deployment.registered()["webhooks"][0]["clientConfig"].get("caBundle")
            ),
        )
        stored = await asyncio.to_thread(self.deployment.registered)
        # Registered again as stored, caBundle included: in effect at once, not only after the
        # replicas' next check of their Secret puts the bundle back.
        self.configuration = {
            "apiVersion": stored["apiVersion"],
            "kind": stored["kind"],
            "metadata": {"name": stored["metadata"]["name"]},
            "webhooks": stored["webhooks"],
        }

    async def arm(self, api: k8s.ApiClient, arm: str, namespace: str) -> None:
        """Register the product's webhook (``with``), the floor (``floor``) or none
        (``without``); wait until in effect."""
        present = await asyncio.to_thread(self._present, CONFIG_NAME)
        if arm == "with" and not present:
            await asyncio.to_thread(self.deployment.register, self.configuration)
        elif arm != "with" and present:
            await asyncio.to_thread(self.deployment.unregister)
        floor = await asyncio.to_thread(self._present, FLOOR_CONFIG)
        if arm == "floor" and not floor:
            await asyncio.to_thread(
                self.deployment.register, self.floor.configuration(self.configuration)
            )
        elif arm != "floor" and floor:
            await asyncio.to_thread(self.deployment.unregister, FLOOR_CONFIG)
        expected: dict[str, Callable[[k8s.V1Pod], bool]] = {
            "with": lambda pod: _patched(pod) and not self.floor.patched(pod),
            "floor": self.floor.patched,
            "without": lambda pod: not _patched(pod),
        }
        await wait_for_admission(api, namespace, read_replica_pod(), expected[arm])

    def _present(self, name: str) -> bool:
        try:
            self.deployment.registered(name)
        except ApiStatusError as e:
            if e.status == 404:
                return False
            raise
        return True

    @contextlib.asynccontextmanager
    async def namespace(self, api: k8s.ApiClient, prefix: str) -> AsyncIterator[str]:
        """A fresh namespace the webhook's configuration selects."""
        async with fresh_namespace(api, prefix) as name:
            await k8s.CoreV1Api(api).patch_namespace(
                name, as_body({"metadata": {"labels": {SELECTED: "enabled"}}})
            )
            yield name


CPU_OF: Final = ("kube-apiserver", "etcd", "webhook", "floor")


def _cpu(bench: _Bench) -> dict[str, float]:
    """CPU seconds used so far by the API server, etcd, the webhook replicas together and the
    floor's together."""
    webhook = 0.0
    for replica in bench.deployment.replicas:
        assert replica.process.pid is not None
        webhook += cpu_seconds(replica.process.pid)
    return {
        "kube-apiserver": cpu_seconds(bench.control_plane.pid("kube-apiserver")),
        "etcd": cpu_seconds(bench.control_plane.pid("etcd")),
        "webhook": webhook,
        "floor": bench.floor.cpu_seconds(),
    }


@dataclass(frozen=True, slots=True)
class Run:
    """One measured run: the creates, the CPU they cost and what admission did to the pods."""

    arm: str
    creations: Creations
    patched: Patched
    cpu_seconds: dict[str, float]
    """Used during the creates, by ``CPU_OF``. The webhook replicas run in both arms: they
    watch every pod whether or not the API server calls them."""

    def cpu_ms_per_pod(self, name: str) -> float:
        return 1000 * self.cpu_seconds[name] / max(1, self.creations.attempted)

    def summary(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            **self.creations.summary(),
            "patched": self.patched.patched,
            "unpatched": self.patched.missing,
            "cpu_ms_per_pod": {name: round(self.cpu_ms_per_pod(name), 3) for name in CPU_OF},
        }


async def _measure(bench: _Bench, api: k8s.ApiClient, arm: str, shape: str, quick: bool) -> Run:
    async with bench.namespace(api, f"load-{shape}-{arm}-") as namespace:
        await bench.arm(api, arm, namespace)
        async with PodCreations(bench.control_plane, namespace, read_replica_pod()) as pods:
            await pods.burst(WARM_UP, 4)
            before = _cpu(bench)
            if shape == "steady":
                creations = await pods.steady(RATE, STEADY_SECONDS["quick" if quick else "full"])
            else:
                creations = await pods.burst(BURST, BURST_CONCURRENCY)
            after = _cpu(bench)
            patched = await pods.patched()
            await pods.delete_all()
    run = Run(arm, creations, patched, {name: after[name] - before[name] for name in CPU_OF})
    logger.info(
        "%s %s: %d pods, p50 %.1f ms, p99 %.1f ms, %d failed, %d of %d patched",
        shape,
        arm,
        creations.attempted,
        percentile(creations.latencies_ms, 0.5),
        percentile(creations.latencies_ms, 0.99),
        creations.failed,
        patched.patched,
        patched.pods,
    )
    return run


def _arm_summary(runs: Sequence[Run]) -> dict[str, Any]:
    """Every round of one arm pooled: all latencies together, failures and patches summed."""
    latencies = [ms for run in runs for ms in run.creations.latencies_ms]
    created = sum(run.creations.created for run in runs)
    seconds = sum(run.creations.seconds for run in runs)
    return {
        "pods": sum(run.creations.attempted for run in runs),
        "failed": sum(run.creations.failed for run in runs),
        "pods_per_s": round(created / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "patched": sum(run.patched.patched for run in runs),
        "unpatched": sum(run.patched.missing for run in runs),
        "cpu_ms_per_pod": {
            name: round(
                1000
                * sum(run.cpu_seconds[name] for run in runs)
                / max(1, sum(run.creations.attempted for run in runs)),
                3,
            )
            for name in CPU_OF
        },
        "rounds": [run.summary() for run in runs],
    }


def _compare(runs: dict[str, list[Run]]) -> dict[str, Any]:
    arms = {arm: _arm_summary(runs[arm]) for arm in ARMS}
    without, floor, with_ = arms["without"], arms["floor"], arms["with"]
    return {
        **arms,
        "added_cpu_ms_per_pod": {
            name: round(with_["cpu_ms_per_pod"][name] - without["cpu_ms_per_pod"][name], 3)
            for name in CPU_OF
        },
        "added_p50_ms": round(with_["p50_ms"] - without["p50_ms"], 2),
        "added_p99_ms": round(with_["p99_ms"] - without["p99_ms"], 2),
        "round_added_p99_ms": _round_differences(runs["with"], runs["without"]),
        "floor_added_p50_ms": round(floor["p50_ms"] - without["p50_ms"], 2),
        "floor_added_p99_ms": round(floor["p99_ms"] - without["p99_ms"], 2),
        "over_floor_p50_ms": round(with_["p50_ms"] - floor["p50_ms"], 2),
        "over_floor_p99_ms": round(with_["p99_ms"] - floor["p99_ms"], 2),
        "round_over_floor_p99_ms": _round_differences(runs["with"], runs["floor"]),
    }


def _round_differences(runs: Sequence[Run], baselines: Sequence[Run]) -> list[float]:
    return [
        round(
            percentile(run.creations.latencies_ms, 0.99)
            - percentile(baseline.creations.latencies_ms, 0.99),
            2,
        )
        for run, baseline in zip(runs, baselines, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Disruption:
    """The steady load across a certificate rotation and a rolling restart."""

    creations: Creations
    patched: Patched
    rotation_seconds: float
    """From aging the stored certificate until every replica had loaded a renewed one."""
    roll_seconds: float
    certificate_renewed: bool
    """The Secret ends with a serving certificate neither the original nor the aged one."""
    replicas_before: tuple[str, ...]
    replicas_after: tuple[str, ...]
    admissions_after: dict[str, float]
    """Reviews each new replica answered by the end of the load."""

    def summary(self) -> dict[str, Any]:
        return {
            **self.creations.summary(),
            "patched": self.patched.patched,
            "unpatched": self.patched.missing,
            "unpatched_pods": list(self.patched.unpatched[:10]),
            "rotation_seconds": round(self.rotation_seconds, 2),
            "roll_seconds": round(self.roll_seconds, 2),
            "certificate_renewed": self.certificate_renewed,
            "replicas_before": list(self.replicas_before),
            "replicas_after": list(self.replicas_after),
            "admissions_after": self.admissions_after,
        }


async def rotate_and_roll_under_load(
    deployment: WebhookDeployment,
    pods: PodCreations,
    *,
    rate: float,
    lead: float = 3.0,
    tail: float = 3.0,
    endpoint_lag: float = 0.0,
) -> Disruption:
    """Create pods at ``rate`` from ``lead`` seconds before the rotation to ``tail`` seconds after
    the roll; then read every pod back."""
    stop = asyncio.Event()
    load = asyncio.create_task(pods.steady(rate, 3600.0, stop=stop))
    try:
        await asyncio.sleep(lead)
        before = await asyncio.to_thread(deployment.serving_fingerprint)
        replicas_before = tuple(r.name for r in deployment.replicas)
        reloads = await asyncio.to_thread(deployment.certificate_reloads)
        started = time.monotonic()
        aged = await asyncio.to_thread(deployment.age_serving_certificate)
        await asyncio.to_thread(
            wait_for,
            "every replica serving a renewed certificate",
            lambda: all(
                now > reloads[name] for name, now in deployment.certificate_reloads().items()
            ),
        )
        rotation_seconds = time.monotonic() - started
        after = await asyncio.to_thread(deployment.serving_fingerprint)
        started = time.monotonic()
        await asyncio.to_thread(deployment.roll, endpoint_lag=endpoint_lag)
        roll_seconds = time.monotonic() - started
        await asyncio.sleep(tail)
    finally:
        stop.set()
        creations = await load
    admissions = {
        r.name: r.counter("stellar_carbon_webhook_admissions_total") for r in deployment.replicas
    }
    return Disruption(
        creations=creations,
        patched=await pods.patched(),
        rotation_seconds=rotation_seconds,
        roll_seconds=roll_seconds,
        certificate_renewed=after not in (before, aged),
        replicas_before=replicas_before,
        replicas_after=tuple(r.name for r in deployment.replicas),
        admissions_after=admissions,
    )


def webhook_deployment(
    control_plane: ControlPlane, namespace: str, log_dir: Path
) -> WebhookDeployment:
    """Two replicas on mock carbon data, checking their Secret every second."""
    return WebhookDeployment(
        control_plane,
        namespace=namespace,
        carbon=mock_carbon_env(),
        log_dir=log_dir,
        env={"STELLAR_CARBON_WEBHOOK_ROTATION_CHECK_INTERVAL": str(ROTATION_CHECK_SECONDS)},
    )


async def run(quick: bool) -> dict[str, Any]:
    mode = "quick" if quick else "full"
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    binaries = await asyncio.to_thread(Binaries.locate)
    control_plane = ControlPlane(binaries, aggregator_routing=True)
    await asyncio.to_thread(control_plane.start)
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-load-") as logs:
        try:
            fleet = fake_fleet()
            await asyncio.to_thread(create_fake_nodes, control_plane, fleet)
            namespace = await asyncio.to_thread(create_namespace, control_plane, "stellar-carbon-")
            deployment = webhook_deployment(control_plane, namespace, Path(logs))
            started = time.monotonic()
            await asyncio.to_thread(deployment.start)
            webhook_startup = time.monotonic() - started
            try:
                floor_dir = Path(logs) / "floor"
                floor_dir.mkdir()
                floor = FloorWebhook(control_plane, namespace, floor_dir)
                async with floor.serving(await product_patch(deployment, namespace)):
                    result = await _measure_all(control_plane, deployment, floor, quick)
            finally:
                await asyncio.to_thread(deployment.close)
        finally:
            await asyncio.to_thread(control_plane.stop)
    return {
        "rate_per_s": RATE,
        "steady_seconds": STEADY_SECONDS[mode],
        "burst_size": BURST,
        "burst_concurrency": BURST_CONCURRENCY,
        "rounds": ROUNDS[mode],
        "nodes": len(fleet),
        "replicas": 2,
        "control_plane_startup_s": round(control_plane.startup_seconds or 0.0, 1),
        "webhook_startup_s": round(webhook_startup, 1),
        "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
        **result,
    }


async def _measure_all(
    control_plane: ControlPlane, deployment: WebhookDeployment, floor: FloorWebhook, quick: bool
) -> dict[str, Any]:
    bench = _Bench(control_plane, deployment, floor)
    async with k8s.ApiClient(control_plane.configuration()) as api:
        await bench.register(api)
        measured: dict[str, dict[str, list[Run]]] = {
            shape: {arm: [] for arm in ARMS} for shape in ("steady", "burst")
        }
        for index in range(ROUNDS["quick" if quick else "full"]):
            order = ARMS if index % 2 == 0 else ARMS[::-1]
            for shape in ("steady", "burst"):
                for arm in order:
                    measured[shape][arm].append(await _measure(bench, api, arm, shape, quick))
        rolls = await _rolls(bench, api, ROUNDS["quick" if quick else "full"])
    steady, burst = _compare(measured["steady"]), _compare(measured["burst"])
    roll = rolls["drain"]
    return {
        "steady": steady,
        "burst": burst,
        "endpoint_lag_s": ENDPOINT_LAG,
        "rotation_and_roll": rolls,
        "targets": {
            "steady_added_p99_ms": _target(steady["added_p99_ms"], TARGET_ADDED_P99_MS),
            "burst_added_p99_ms": _target(burst["added_p99_ms"], TARGET_ADDED_P99_MS),
            "steady_over_floor_p99_ms": _target(steady["over_floor_p99_ms"], TARGET_ADDED_P99_MS),
            "burst_over_floor_p99_ms": _target(burst["over_floor_p99_ms"], TARGET_ADDED_P99_MS),
            "failed_creations": _target(
                steady["with"]["failed"] + burst["with"]["failed"] + roll["failed"], 0
            ),
            "unpatched_selected_pods": _target(
                steady["with"]["unpatched"] + burst["with"]["unpatched"] + roll["unpatched"], 0
            ),
        },
    }


def _template(deployment: WebhookDeployment, arm: str) -> None:
    """Replicas started from now on run ``arm``'s settings."""
    deployment.env.pop(SHUTDOWN_DELAY, None)
    deployment.env.update(ROLL_ARMS[arm])


async def _rolls(bench: _Bench, api: k8s.ApiClient, rounds: int) -> dict[str, dict[str, Any]]:
    """Renewal and roll under load, ``rounds`` times per arm, the arms alternating.

    A roll terminates replicas started by the previous one, so the template is switched to the
    next arm's just before each roll; one roll without load starts the first arm's replicas.
    """
    order = [arm for _ in range(rounds) for arm in ROLL_ARMS]
    _template(bench.deployment, order[0])
    await asyncio.to_thread(bench.deployment.roll)
    runs: dict[str, list[Disruption]] = {arm: [] for arm in ROLL_ARMS}
    for index, arm in enumerate(order):
        _template(bench.deployment, order[index + 1] if index + 1 < len(order) else "drain")
        async with bench.namespace(api, f"load-roll-{arm}-") as namespace:
            await bench.arm(api, "with", namespace)
            async with PodCreations(bench.control_plane, namespace, read_replica_pod()) as pods:
                run = await rotate_and_roll_under_load(
                    bench.deployment, pods, rate=RATE, endpoint_lag=ENDPOINT_LAG
                )
                await pods.delete_all()
        logger.info("renewal and roll (%s): %s", arm, run.summary())
        runs[arm].append(run)
    return {arm: _roll_summary(arm_runs) for arm, arm_runs in runs.items()}


def _roll_summary(runs: Sequence[Disruption]) -> dict[str, Any]:
    latencies = [ms for run in runs for ms in run.creations.latencies_ms]
    return {
        "rolls": len(runs),
        "pods": sum(run.creations.attempted for run in runs),
        "failed": sum(run.creations.failed for run in runs),
        "unpatched": sum(run.patched.missing for run in runs),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "rotation_seconds": round(max(run.rotation_seconds for run in runs), 2),
        "roll_seconds": round(max(run.roll_seconds for run in runs), 2),
        "certificate_renewed": all(run.certificate_renewed for run in runs),
        "runs": [run.summary() for run in runs],
    }


def _target(value: float, at_most: float) -> dict[str, Any]:
    return {"target": f"<= {at_most:g}", "value": value, "met": value <= at_most}
