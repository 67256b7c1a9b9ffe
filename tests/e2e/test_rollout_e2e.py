"""Certificate rotation and a rolling restart of the webhook while pods are being created.

The webhook runs as the chart deploys it: two replicas behind a Service the API server resolves
to their endpoints (``tests.e2e.rollout``; this module's control plane runs with
``--enable-aggregator-routing``), self-managed TLS. Read replicas are created at a steady rate
through the API server while the stored serving certificate comes due and is renewed, and then
while the Deployment rolls both replicas, each old one getting SIGTERM a second before its
endpoint turns terminating. ``failurePolicy: Ignore`` would admit a pod whose webhook call failed,
unpatched: every create must succeed and every pod must carry the webhook's decision.

The full-length measurement, and the same roll with replicas that do not drain, are the
``apiserver-load`` benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s

from bench.apiserver_load import (
    SELECTED,
    SHUTDOWN_DELAY,
    read_replica_pod,
    rotate_and_roll_under_load,
    webhook_deployment,
)
from bench.pod_load import PodCreations
from tests.e2e.cluster import Binaries, ControlPlane
from tests.e2e.fleet import create_fake_nodes, fake_fleet
from tests.e2e.kube import as_body, fresh_namespace, wait_for_admission
from tests.e2e.rollout import WebhookDeployment
from tests.e2e.services import RANKING_ANNOTATION, create_namespace

pytestmark = pytest.mark.e2e

RATE = 20.0
ENDPOINT_LAG = 1.0


@pytest.fixture(scope="module")
def routed_control_plane() -> Iterator[ControlPlane]:
    """A control plane of its own whose API server calls webhook Services on their endpoints."""
    control_plane = ControlPlane(Binaries.locate(), aggregator_routing=True)
    control_plane.start()
    try:
        create_fake_nodes(control_plane, fake_fleet())
        yield control_plane
    finally:
        control_plane.stop()


@pytest.fixture
def deployment(routed_control_plane: ControlPlane, tmp_path: Path) -> Iterator[WebhookDeployment]:
    namespace = create_namespace(routed_control_plane, "stellar-carbon-")
    deployment = webhook_deployment(routed_control_plane, namespace, tmp_path)
    # Longer than the endpoint lag, shorter than the default, to keep the test brief.
    deployment.env[SHUTDOWN_DELAY] = "3"
    with deployment:
        deployment.register(
            deployment.configuration(namespace_selector={"matchLabels": {SELECTED: "enabled"}})
        )
        yield deployment


async def test_pods_created_through_a_certificate_renewal_and_a_rolling_restart_all_get_the_patch(
    routed_control_plane: ControlPlane, deployment: WebhookDeployment
) -> None:
    async with (
        k8s.ApiClient(routed_control_plane.configuration()) as api,
        fresh_namespace(api, "roll-") as namespace,
    ):
        await k8s.CoreV1Api(api).patch_namespace(
            namespace, as_body({"metadata": {"labels": {SELECTED: "enabled"}}})
        )
        await wait_for_admission(
            api,
            namespace,
            read_replica_pod(),
            lambda pod: RANKING_ANNOTATION in (pod.metadata.annotations or {}),
        )
        log = routed_control_plane.logs_dir / "kube-apiserver.log"
        before = log.stat().st_size
        async with PodCreations(routed_control_plane, namespace, read_replica_pod()) as pods:
            run = await rotate_and_roll_under_load(
                deployment, pods, rate=RATE, endpoint_lag=ENDPOINT_LAG
            )

    with log.open("rb") as f:
        f.seek(before)
        apiserver_log = f.read().decode(errors="replace")
    assert run.creations.attempted >= 200
    assert (run.creations.failed, run.creations.errors) == (0, ())
    assert (run.patched.pods, run.patched.unpatched) == (run.creations.attempted, ())
    assert "failing open" not in apiserver_log
    assert run.certificate_renewed
    assert not set(run.replicas_before) & set(run.replicas_after)
    assert sum(run.admissions_after.values()) > 0
