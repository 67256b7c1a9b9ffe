"""Both services at the Kubernetes scalability envelope, on a real kube-apiserver.

A real etcd and kube-apiserver from the end-to-end control plane (no scheduler, controllers or
kwok: nothing here needs them) are seeded through the API with nodes and pods bound by
``spec.nodeName``: a small cluster first, then the envelope (5,000 nodes, 150,000 pods of which
3,000 are Stellar's: operator read replicas and main pods). Pods are created with bounded
concurrency and the seeding time is reported. At each size the webhook and the reporter run as
real processes (``python -m webhook``, ``python -m reporter``) on mock carbon data, watching that
API server, and report:

* watch sync time: from process start until the webhook's ``/readyz`` (every workload watch listed)
  and the reporter's health (nodes and pods listed, first refresh) answer 200;
* resident memory (``VmRSS``) after the measurements;
* reporter Prometheus ``/metrics`` and webhook admission (a read-pool pod) latency, sequential.

At the envelope they run twice: with the default Stellar pod selectors and watching every pod
(the webhook's ``WATCH_ALL_PODS``; the reporter with a selector every pod matches), which shows
what the selector buys. ``--quick`` seeds a tenth of the envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Final

import aiohttp
import orjson

from bench.loadgen import closed_loop
from bench.payloads import read_pool_pod, review_bodies
from bench.servers import REPO, Server, Tls, free_port, make_tls
from shared.core.models import Cloud
from tests.e2e.cluster import Binaries, ControlPlane
from tests.e2e.fleet import make_node
from webhook.app import MUTATE_PATH

logger = logging.getLogger(__name__)

NODES: Final = 5000
PODS: Final = 150_000
STELLAR_PODS: Final = 3000
SMALL: Final = (50, 200, 100)
"""Nodes, pods and Stellar pods of the small cluster the envelope is compared with."""
CONCURRENCY: Final = 48
"""Creations in flight while seeding: enough to keep the API server busy, not to swamp it."""
_REGIONS: Final = (
    (Cloud.AWS, "us-east-1"),
    (Cloud.AWS, "us-west-2"),
    (Cloud.AWS, "eu-central-1"),
    (Cloud.AWS, "eu-north-1"),
    (Cloud.GCP, "europe-west1"),
    (Cloud.GCP, "us-central1"),
    (Cloud.AZURE, "westeurope"),
    (Cloud.AZURE, "eastus"),
)
_INSTANCE: Final = {
    Cloud.AWS: "m5.2xlarge",
    Cloud.GCP: "n2-standard-8",
    Cloud.AZURE: "Standard_D8s_v5",
}
_OPERATOR_LABELS: Final = {
    "app.kubernetes.io/component": "validator",
    "app.kubernetes.io/managed-by": "stellar-operator",
    "app.kubernetes.io/name": "stellar-node",
    "stellar-network": "testnet",
    "stellar.org/node-type": "Validator",
}
EVERY_POD: Final = "!stellar-carbon.bench/never-set"
"""A selector every pod matches: the reporter's stand-in for watching every pod."""
_POD_NAMESPACES: Final = 20


class _ApiServerOnly(ControlPlane):
    """etcd and kube-apiserver alone: seeding and watching need nothing else."""

    def _start_components(self) -> None:
        self._start_api_server()


def _node(index: int) -> dict[str, Any]:
    cloud, region = _REGIONS[index % len(_REGIONS)]
    zone = f"{region}{'abc'[index // len(_REGIONS) % 3]}"
    return make_node(f"node-{index:05d}", cloud, region, zone, _INSTANCE[cloud])


def _pod(name: str, namespace: str, node: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.org/app:1",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
        },
    }


def _pods(start: int, stop: int, stellar: int, nodes: int) -> list[tuple[str, dict[str, Any]]]:
    """Pods ``start``..``stop`` of the cluster: the first ``stellar`` of all are Stellar's (one
    main pod per 20), the rest ordinary workloads spread over the nodes and namespaces."""
    made = []
    for index in range(start, stop):
        node = f"node-{index % nodes:05d}"
        if index < stellar:
            pool = index // 20
            labels = dict(_OPERATOR_LABELS, **{"app.kubernetes.io/instance": f"node-{pool}"})
            if index % 20:
                labels["stellar.org/role"] = "read-replica"
            made.append(("stellar", _pod(f"stellar-{index:06d}", "stellar", node, labels)))
        else:
            namespace = f"team-{index % _POD_NAMESPACES}"
            labels = {"app": f"web-{index % 500}", "pod-template-hash": "5d8f7c9b6"}
            made.append((namespace, _pod(f"web-{index:06d}", namespace, node, labels)))
    return made


@dataclass
class _Api:
    """The API server over plain aiohttp: seeding is write-heavy and needs no models."""

    session: aiohttp.ClientSession
    server: str

    async def post(self, path: str, body: Mapping[str, Any]) -> None:
        async with self.session.post(self.server + path, data=orjson.dumps(body)) as response:
            if response.status not in (201, 409):
                text = await response.text()
                raise RuntimeError(f"POST {path}: HTTP {response.status}: {text[:300]}")
            await response.read()

    async def bulk(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> float:
        """POST every ``(path, body)`` with ``CONCURRENCY`` in flight; seconds taken."""
        started = time.perf_counter()
        queue = iter(items)

        async def worker() -> None:
            for path, body in queue:
                await self.post(path, body)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - started


@contextlib.asynccontextmanager
async def _api(control_plane: ControlPlane) -> AsyncIterator[_Api]:
    headers = {"Authorization": f"Bearer {control_plane.token}"}
    connector = aiohttp.TCPConnector(ssl=control_plane.ca.ssl_context(), limit=CONCURRENCY)
    async with aiohttp.ClientSession(
        connector=connector, headers={**headers, "Content-Type": "application/json"}
    ) as session:
        yield _Api(session, control_plane.server)


async def _seed(
    api: _Api, nodes: tuple[int, int], pods: tuple[int, int], stellar: int, total_nodes: int
) -> dict[str, Any]:
    node_seconds = await api.bulk([("/api/v1/nodes", _node(i)) for i in range(nodes[0], nodes[1])])
    pod_items = [
        (f"/api/v1/namespaces/{namespace}/pods", body)
        for namespace, body in _pods(pods[0], pods[1], stellar, total_nodes)
    ]
    pod_seconds = await api.bulk(pod_items)
    count = pods[1] - pods[0]
    return {
        "nodes_created": nodes[1] - nodes[0],
        "nodes_seconds": round(node_seconds, 1),
        "pods_created": count,
        "pods_seconds": round(pod_seconds, 1),
        "pods_per_second": round(count / pod_seconds, 1) if pod_seconds else None,
    }


async def _namespaces(api: _Api) -> None:
    for name in ["stellar", *(f"team-{i}" for i in range(_POD_NAMESPACES))]:
        await api.post("/api/v1/namespaces", {"metadata": {"name": name}})
        # No controller manager runs, so the account pods need is created by hand.
        await api.post(
            f"/api/v1/namespaces/{name}/serviceaccounts", {"metadata": {"name": "default"}}
        )


@contextlib.asynccontextmanager
async def _service(
    kind: str, env: Mapping[str, str], port: int, ready_url: str, tls: Tls | None = None
) -> AsyncIterator[tuple[Server, float]]:
    """``python -m <kind>`` with ``env``; yields it and the seconds until ``ready_url`` was 200."""
    with TemporaryDirectory(prefix=f"bench-{kind}-") as directory:
        log_path = Path(directory) / "log"
        with log_path.open("wb") as log:
            started = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                kind,
                cwd=REPO,
                env={**os.environ, **env},
                stdout=log,
                stderr=log,
            )
        server = Server(kind, process, port, log_path)
        try:
            ssl = tls.client_context() if tls is not None else None
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl)) as session:
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"{kind} exited:\n{log_path.read_text()[-3000:]}")
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(ready_url) as response:
                            if response.status == 200:
                                break
                    if time.perf_counter() - started > 900:
                        raise RuntimeError(f"{kind} not ready:\n{log_path.read_text()[-3000:]}")
                    await asyncio.sleep(0.2)
            yield server, time.perf_counter() - started
        finally:
            await server.stop()


async def _measure(
    control_plane: ControlPlane, tls: Tls, *, every_pod: bool, quick: bool
) -> dict[str, Any]:
    """Both services against the cluster as it is now, with the default selectors or watching
    every pod."""
    common = {
        "KUBECONFIG": str(control_plane.kubeconfig_path),
        "STELLAR_CARBON_PROVIDERS": "mock",
    }
    hook_port, hook_health, reporter_port = free_port(), free_port(), free_port()
    webhook_env = {
        **common,
        "STELLAR_CARBON_WEBHOOK_BIND_ADDRESS": "127.0.0.1",
        "STELLAR_CARBON_WEBHOOK_PORT": str(hook_port),
        "STELLAR_CARBON_WEBHOOK_HEALTH_PORT": str(hook_health),
        "STELLAR_CARBON_WEBHOOK_CERT_DIR": str(tls.directory),
        "STELLAR_CARBON_WEBHOOK_KUBECONFIG": str(control_plane.kubeconfig_path),
        "STELLAR_CARBON_WEBHOOK_LOG_LEVEL": "WARNING",
    }
    reporter_env = {
        **common,
        "STELLAR_CARBON_REPORTER_HOST": "127.0.0.1",
        "STELLAR_CARBON_REPORTER_PORT": str(reporter_port),
        "STELLAR_CARBON_REPORTER_LOG_LEVEL": "WARNING",
    }
    if every_pod:
        webhook_env["STELLAR_CARBON_WEBHOOK_WATCH_ALL_PODS"] = "true"
        reporter_env["STELLAR_CARBON_REPORTER_POD_SELECTOR"] = EVERY_POD
    requests = 100 if quick else 400
    seconds = 5.0 if quick else 15.0
    result: dict[str, Any] = {}
    ready = f"http://127.0.0.1:{hook_health}/readyz"
    async with _service("webhook", webhook_env, hook_health, ready) as (webhook, synced):
        bodies = review_bodies(read_pool_pod(), 64)
        connector = aiohttp.TCPConnector(limit=1, ssl=tls.client_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"https://127.0.0.1:{hook_port}{MUTATE_PATH}"
            admissions = await closed_loop(
                session, url, bodies, concurrency=1, max_requests=requests, max_seconds=seconds
            )
        result["webhook"] = {
            "sync_s": round(synced, 1),
            "rss_mb": round(webhook.rss_mb(), 1),
            "admission": admissions.summary(),
        }
    health = f"http://127.0.0.1:{reporter_port}/api/v1/sustainability/health"
    async with _service("reporter", reporter_env, reporter_port, health) as (reporter, synced):
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{reporter_port}/metrics"
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            first = (time.perf_counter() - started) * 1000
            scrapes = await closed_loop(
                session,
                url,
                [None],
                concurrency=1,
                max_requests=requests,
                max_seconds=seconds,
                method="GET",
            )
        result["reporter"] = {
            "sync_s": round(synced, 1),
            "rss_mb": round(reporter.rss_mb(), 1),
            "first_scrape_ms": round(first, 1),
            "prometheus": scrapes.summary(),
        }
    for service in ("webhook", "reporter"):
        errors = result[service]["admission" if service == "webhook" else "prometheus"]["errors"]
        if errors:
            raise RuntimeError(f"{service}: {errors} failed requests")
    return result


async def run(quick: bool) -> dict[str, Any]:
    scale = 10 if quick else 1
    nodes, pods, stellar = NODES // scale, PODS // scale, STELLAR_PODS // scale
    small_nodes, small_pods, small_stellar = SMALL
    binaries = Binaries.locate()
    with TemporaryDirectory(prefix="bench-envelope-tls-") as directory:
        tls = make_tls(Path(directory))
        with _ApiServerOnly(binaries) as control_plane:
            async with _api(control_plane) as api:
                await _namespaces(api)
                small_seed = await _seed(
                    api, (0, small_nodes), (0, small_pods), small_stellar, small_nodes
                )
                small = await _measure(control_plane, tls, every_pod=False, quick=quick)
                seed = await _seed(api, (small_nodes, nodes), (small_pods, pods), stellar, nodes)
            selected = await _measure(control_plane, tls, every_pod=False, quick=quick)
            every = await _measure(control_plane, tls, every_pod=True, quick=quick)
    return {
        "quick": quick,
        "small": {"nodes": small_nodes, "pods": small_pods, "seed": small_seed, **small},
        "envelope": {
            "nodes": nodes,
            "pods": pods,
            # The small cluster's pods come first: its Stellar pods, then ordinary ones.
            "stellar_pods": small_stellar + max(0, stellar - small_pods),
            "seed": seed,
            "selector": selected,
            "every_pod": every,
        },
        "admission_p99_ms": {
            "small": small["webhook"]["admission"]["p99_ms"],
            "envelope": selected["webhook"]["admission"]["p99_ms"],
        },
        "prometheus_p99_ms": selected["reporter"]["prometheus"]["p99_ms"],
        "rss_mb": {
            "webhook": selected["webhook"]["rss_mb"],
            "reporter": selected["reporter"]["rss_mb"],
            "webhook_every_pod": every["webhook"]["rss_mb"],
            "reporter_every_pod": every["reporter"]["rss_mb"],
        },
    }
