"""``make demo``: carbon-aware placement of a Stellar read pool on a real Kubernetes control plane.

Brings up etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback (the
end-to-end test cluster, ``tests/e2e/cluster.py``), registers kwok nodes in 15 AWS, GCP and Azure
regions (three zones of two nodes each, like regional node pools), and runs both services as local
processes on the built-in mock carbon data: the webhook with self-managed TLS (it writes its own CA
into a MutatingWebhookConfiguration that calls it at ``https://127.0.0.1:PORT/mutate``) and the
reporter on port 9090. It then creates a StellarNode's main pod and its read pool exactly as the
upstream Stellar-K8s operator writes them (the StatefulSet with its anti-affinity and
DoNotSchedule spreads, and its HPA: ``tests/e2e/operator.py``), prints where the real scheduler
placed the read pods next to each region's expected intensity, and keeps the reporter up for
``curl`` until Ctrl-C. Everything stops on exit.

Needs the control-plane binaries (``STELLAR_CARBON_BIN``, as ``make demo`` sets it, or a build
through ``tests/e2e/controlplane/build.sh``). ``STELLAR_CARBON_MOCK_CLOCK`` and
``STELLAR_CARBON_MOCK_SEED`` pin the mock data, for a reproducible table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

from kubernetes_asyncio import client as k8s

from shared.core.models import Cloud
from tests.e2e.carbon_api import mock_carbon_env
from tests.e2e.cluster import ApiStatusError, Binaries, ControlPlane, ControlPlaneError
from tests.e2e.fleet import FakeNode, create_fake_nodes, zoned_fleet
from tests.e2e.kube import wait_for_pods
from tests.e2e.operator import (
    MAIN_SELECTOR,
    READ_POOL,
    READ_POOL_SELECTOR,
    create_main_pod,
    create_operator_read_pool,
)
from tests.e2e.placement import REGION_LABEL, placement_rows, placement_table, preference_weights
from tests.e2e.processes import ServiceError
from tests.e2e.services import (
    RANKING_ANNOTATION,
    LocalReporter,
    LocalWebhook,
    create_namespace,
    serve_namespace,
)

DEMO_REGIONS: Final = {
    Cloud.AWS: ("us-west-2", "us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-1"),
    Cloud.GCP: ("us-central1", "us-east1", "us-west1", "europe-west1", "asia-east1"),
    Cloud.AZURE: ("eastus", "eastus2", "westus", "westeurope", "southeastasia"),
}
"""The 15 regions of the packaged demo cluster (``make run``)."""

NAMESPACE_PREFIX: Final = "stellar-"


@dataclass(frozen=True)
class Placement:
    """Where the read pool landed and what the webhook decided it on."""

    namespace: str
    pod_nodes: Mapping[str, str]
    weights: Mapping[str, int]
    required: tuple[str, ...]
    """Regions the pods were restricted to (empty: preferred terms only)."""
    expected: Mapping[str, float]
    """Expected gCO2eq/kWh over the horizon per region, from the pods' ranking annotation."""


def ranking_values(annotation: str) -> dict[str, float]:
    """``us-west-2=118,europe-west1=180`` → ``{"us-west-2": 118.0, "europe-west1": 180.0}``."""
    values: dict[str, float] = {}
    for item in filter(None, annotation.split(",")):
        region, _, value = item.partition("=")
        values[region] = float(value)
    return values


def required_regions(node_affinity: Mapping[str, Any]) -> tuple[str, ...]:
    """The regions a required node-affinity term on the region label allows, if any."""
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == REGION_LABEL and expression.get("operator") == "In":
                return tuple(expression.get("values") or ())
    return ()


def create_read_pool_namespace(control_plane: ControlPlane, timeout: float = 60.0) -> str:
    """A namespace for the read pool, ready for pods (its default ServiceAccount exists).

    It stays until the control plane goes, so the reporter keeps showing its pods.
    """
    namespace = create_namespace(control_plane, NAMESPACE_PREFIX)
    deadline = time.monotonic() + timeout
    while True:
        try:
            control_plane.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
            return namespace
        except ApiStatusError as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


async def place_read_pool(control_plane: ControlPlane, namespace: str, replicas: int) -> Placement:
    """Create the main pod and the read pool where the webhook serves; wait until all run."""
    async with k8s.ApiClient(control_plane.configuration()) as api:
        await serve_namespace(api, namespace)
        await create_main_pod(api, namespace)
        await wait_for_pods(api, namespace, MAIN_SELECTOR, count=1, timeout=60)
        await create_operator_read_pool(api, namespace, replicas)
        pods = await wait_for_pods(api, namespace, READ_POOL_SELECTOR, count=replicas, timeout=180)
        last = api.sanitize_for_serialization(pods[-1])
    affinity = last["spec"].get("affinity", {}).get("nodeAffinity", {})
    annotations = last["metadata"].get("annotations", {})
    return Placement(
        namespace=namespace,
        pod_nodes={p.metadata.name: p.spec.node_name for p in pods},
        weights=preference_weights(
            affinity.get("preferredDuringSchedulingIgnoredDuringExecution", []), REGION_LABEL
        ),
        required=required_regions(affinity),
        expected=ranking_values(annotations.get(RANKING_ANNOTATION, "")),
    )


def report(placement: Placement, fleet: Sequence[FakeNode], reporter: LocalReporter) -> str:
    rows = placement_rows(
        pod_nodes=placement.pod_nodes,
        node_regions={n.name: n.region for n in fleet},
        region_clouds={n.region: n.cloud.value for n in fleet},
        intensities=placement.expected,
        weights=placement.weights,
    )
    table = placement_table(
        rows,
        title=(
            f"{READ_POOL} ({len(placement.pod_nodes)} replicas, the operator's template) in "
            f"namespace {placement.namespace}, placed by kube-scheduler; gCO2eq/kWh = expected "
            "over the next 24 h, as the webhook ranked the regions"
        ),
    )
    required = (
        "required regions (the last pod's set, sized for the pool): "
        + ", ".join(placement.required)
        if placement.required
        else "no required regions: preferred terms only"
    )
    replicas = reporter.api("metrics")["readReplicas"]
    savings = replicas.get("savingsPercent")
    summary = (
        f"reporter: {replicas['carbonAware']}/{replicas['total']} read replicas carbon-aware, "
        f"{replicas['inGreenestRegion']} in the greenest region "
        f"({', '.join(replicas['greenestRegions']) or '-'}); "
        + (
            f"estimated {savings:.1f} % less CO2 than an even spread"
            if savings is not None
            else "no savings estimate yet"
        )
    )
    return f"{table}\n{required}\n\n{summary}"


def wait_for_reporter_count(reporter: LocalReporter, replicas: int, timeout: float = 30.0) -> None:
    """The reporter follows pods through a watch; let it catch up before printing its numbers."""
    deadline = time.monotonic() + timeout
    while reporter.api("metrics")["readReplicas"]["total"] < replicas:
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def _stop_on_signal(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    _stop_on_signal(stop)
    carbon = mock_carbon_env(args.seed)
    if os.environ.get("STELLAR_CARBON_MOCK_CLOCK"):
        carbon["STELLAR_CARBON_MOCK_CLOCK"] = os.environ["STELLAR_CARBON_MOCK_CLOCK"]
    fleet = zoned_fleet(DEMO_REGIONS, zones=3, nodes_per_zone=2)

    print("starting etcd, kube-apiserver, controller-manager, scheduler and kwok ...", flush=True)
    control_plane = ControlPlane(Binaries.locate())
    control_plane.start()
    failed = True
    try:
        print(f"control plane up at {control_plane.server}; adding {len(fleet)} kwok nodes")
        create_fake_nodes(control_plane, fleet)
        logs = control_plane.logs_dir
        with (
            LocalWebhook(
                control_plane, name="carbon.demo.stellar.org", carbon=carbon, log_dir=logs
            ) as webhook,
            LocalReporter(control_plane, carbon=carbon, log_dir=logs, port=args.port) as reporter,
        ):
            print(f"webhook serving {webhook.url} (self-managed TLS, CA injected)")
            print(f"reporter serving {reporter.url}")
            namespace = create_read_pool_namespace(control_plane)
            placement = asyncio.run(place_read_pool(control_plane, namespace, args.replicas))
            wait_for_reporter_count(reporter, args.replicas)
            print()
            print(report(placement, fleet, reporter))
            print()
            api = f"{reporter.url}/api/v1/sustainability"
            print("try:")
            for path in ("metrics", "regions", "nodes?limit=5", "forecast/us-west-2?hours=12"):
                print(f"  curl -s '{api}/{path}'")
            print(f"  curl -s {reporter.url}/metrics | grep stellar_carbon_read_replicas")
            print(f"kubeconfig (for kubectl or helm): {control_plane.kubeconfig_path}")
            print(f"logs: {logs}")
            if not args.once:
                print("Ctrl-C to stop and tear everything down.", flush=True)
                while not stop.wait(1.0):
                    pass
        failed = False
    except KeyboardInterrupt:
        failed = False
    except (ControlPlaneError, ServiceError) as e:
        print(f"demo failed: {e}", file=sys.stderr)
    finally:
        print("stopping ...", flush=True)
        control_plane.stop(keep_workdir=failed)
        if failed:
            print(f"logs kept in {control_plane.logs_dir}", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=6, help="read-pool replicas (default 6)")
    parser.add_argument("--port", type=int, default=9090, help="reporter port (default 9090)")
    parser.add_argument("--seed", type=int, default=0, help="mock data seed (default 0)")
    parser.add_argument(
        "--once", action="store_true", help="print the placement and exit instead of waiting"
    )
    args = parser.parse_args()
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
