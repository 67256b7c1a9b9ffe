"""Smoke tests: the control plane the other end-to-end tests rely on behaves like a cluster."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s
from pytest_aiohttp import AiohttpServer

from shared.core.models import Cloud
from tests.e2e.cluster import KUBERNETES_VERSION, ControlPlane
from tests.e2e.descheduler import EVICTED, deschedule_once
from tests.e2e.fleet import FakeNode
from tests.e2e.kube import (
    as_body,
    mutating_webhook_configuration,
    registered_mutating_webhook,
    wait_for_admission,
    wait_for_pods,
)

pytestmark = pytest.mark.e2e

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
_PROVIDER_ID_SCHEMES = {Cloud.AWS: "aws:///", Cloud.GCP: "gce://", Cloud.AZURE: "azure:///"}


def _pod_template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": PAUSE_IMAGE,
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                }
            ]
        },
    }


def _print_placement(pods: list[k8s.V1Pod], fleet: tuple[FakeNode, ...]) -> None:
    regions = {n.name: n.region for n in fleet}
    for pod in pods:
        node = pod.spec.node_name
        print(f"{pod.metadata.name} -> {node} ({regions.get(node, '?')})")


async def test_apiserver_reports_the_built_kubernetes_version(kube_api: k8s.ApiClient) -> None:
    version = await k8s.VersionApi(kube_api).get_code()

    assert version.git_version == KUBERNETES_VERSION


def test_each_running_component_is_found_by_its_process_id(control_plane: ControlPlane) -> None:
    # What the benchmarks read CPU time through.
    for name in ("etcd", "kube-apiserver", "kube-scheduler"):
        command = Path(f"/proc/{control_plane.pid(name)}/cmdline").read_bytes().split(b"\0")[0]
        assert Path(command.decode()).name == name


async def test_fake_nodes_in_every_cloud_are_ready_and_schedulable(
    kube_api: k8s.ApiClient, fake_nodes: tuple[FakeNode, ...]
) -> None:
    listed = await k8s.CoreV1Api(kube_api).list_node(label_selector="type=kwok")
    nodes = {n.metadata.name: n for n in listed.items}

    assert set(nodes) == {n.name for n in fake_nodes}
    for fake in fake_nodes:
        node = nodes[fake.name]
        ready = [c.status for c in node.status.conditions if c.type == "Ready"]
        assert ready == ["True"], fake.name
        assert not node.spec.unschedulable
        assert not [t for t in node.spec.taints or [] if t.effect in ("NoSchedule", "NoExecute")]
        assert node.metadata.labels["topology.kubernetes.io/region"] == fake.region
        assert node.metadata.labels["topology.kubernetes.io/zone"] == fake.zone
        assert node.status.allocatable["cpu"] == "8"
        assert node.spec.provider_id.startswith(_PROVIDER_ID_SCHEMES[fake.cloud])
    assert {n.cloud for n in fake_nodes} == {Cloud.AWS, Cloud.GCP, Cloud.AZURE}
    assert len({n.region for n in fake_nodes}) >= 6


async def test_deployment_pods_are_bound_by_the_scheduler_and_run(
    kube_api: k8s.ApiClient, namespace: str, fake_nodes: tuple[FakeNode, ...]
) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "smoke"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "smoke"}},
            "template": _pod_template("smoke"),
        },
    }
    await k8s.AppsV1Api(kube_api).create_namespaced_deployment(namespace, as_body(deployment))

    pods = await wait_for_pods(kube_api, namespace, "app=smoke", count=3)

    _print_placement(pods, fake_nodes)
    assert {p.spec.node_name for p in pods} <= {n.name for n in fake_nodes}
    assert {p.spec.scheduler_name for p in pods} == {"default-scheduler"}


async def test_statefulset_pods_are_bound_by_the_scheduler_and_run_in_order(
    kube_api: k8s.ApiClient, namespace: str, fake_nodes: tuple[FakeNode, ...]
) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ledger"},
        "spec": {"clusterIP": "None", "selector": {"app": "ledger"}, "ports": [{"port": 11626}]},
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "ledger"},
        "spec": {
            "serviceName": "ledger",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "ledger"}},
            "template": _pod_template("ledger"),
        },
    }
    await k8s.CoreV1Api(kube_api).create_namespaced_service(namespace, as_body(service))
    await k8s.AppsV1Api(kube_api).create_namespaced_stateful_set(namespace, as_body(statefulset))

    pods = await wait_for_pods(kube_api, namespace, "app=ledger", count=3)

    _print_placement(pods, fake_nodes)
    # OrderedReady creates ledger-1 only once ledger-0 is Ready, so all three prove kwok
    # reports readiness the way a kubelet would.
    assert [p.metadata.name for p in pods] == ["ledger-0", "ledger-1", "ledger-2"]
    assert {p.spec.node_name for p in pods} <= {n.name for n in fake_nodes}


async def test_apiserver_calls_a_webhook_registered_by_loopback_url_over_verified_tls(
    control_plane: ControlPlane,
    kube_api: k8s.ApiClient,
    namespace: str,
    aiohttp_server: AiohttpServer,
    tmp_path: Path,
) -> None:
    operations: list[str] = []

    async def mutate(request: web.Request) -> web.Response:
        review = await request.json()
        operations.append(review["request"]["operation"])
        patch = [{"op": "add", "path": "/metadata/labels/probe~1mutated", "value": "yes"}]
        return web.json_response(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
                },
            }
        )

    app = web.Application()
    app.router.add_post("/mutate", mutate)
    cert, key = control_plane.ca.issue("probe-webhook", ["127.0.0.1"]).write(tmp_path, "webhook")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = await aiohttp_server(app, ssl=tls)
    configuration = mutating_webhook_configuration(
        f"probe.{namespace}.e2e.stellar.org",
        str(server.make_url("/mutate")),
        control_plane.ca.ca_bundle,
        failure_policy="Fail",
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}},
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "probe", "labels": {"app": "probe"}},
        "spec": _pod_template("probe")["spec"],
    }

    async with registered_mutating_webhook(kube_api, configuration):
        await wait_for_admission(
            kube_api, namespace, pod, lambda p: "probe/mutated" in p.metadata.labels
        )
        await k8s.CoreV1Api(kube_api).create_namespaced_pod(namespace, as_body(pod))

    (created,) = await wait_for_pods(kube_api, namespace, "app=probe", count=1)
    assert created.metadata.labels["probe/mutated"] == "yes"
    assert set(operations) == {"CREATE"}


async def test_the_descheduler_moves_a_pod_to_a_node_its_preferred_affinity_now_ranks_higher(
    kube_api: k8s.ApiClient,
    namespace: str,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    tmp_path: Path,
) -> None:
    """The real descheduler's RemovePodsViolatingNodeAffinity (preferred): what will move running
    read replicas once node labels change."""
    core = k8s.CoreV1Api(kube_api)
    label = "e2e.stellar.org/smoke-tier"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "follower"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "follower"}},
            "template": _pod_template("follower"),
        },
    }
    deployment["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [{"key": label, "operator": "In", "values": ["0"]}]
                    },
                }
            ]
        }
    }
    await k8s.AppsV1Api(kube_api).create_namespaced_deployment(namespace, as_body(deployment))
    (before,) = await wait_for_pods(kube_api, namespace, "app=follower", count=1)
    target = next(n.name for n in fake_nodes if n.name != before.spec.node_name)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        json.dumps(
            {
                "apiVersion": "descheduler/v1alpha2",
                "kind": "DeschedulerPolicy",
                "profiles": [
                    {
                        "name": "smoke",
                        "pluginConfig": [
                            {
                                "name": "RemovePodsViolatingNodeAffinity",
                                "args": {
                                    "nodeAffinityType": [
                                        "preferredDuringSchedulingIgnoredDuringExecution"
                                    ],
                                    "namespaces": {"include": [namespace]},
                                },
                            }
                        ],
                        "plugins": {"deschedule": {"enabled": ["RemovePodsViolatingNodeAffinity"]}},
                    }
                ],
            }
        )
    )
    await core.patch_node(target, as_body({"metadata": {"labels": {label: "0"}}}))
    try:
        output = await deschedule_once(control_plane, policy)
        assert EVICTED in output, output[-3000:]
        pods = await wait_for_pods(kube_api, namespace, "app=follower", count=1)
    finally:
        await core.patch_node(target, as_body({"metadata": {"labels": {label: None}}}))

    (after,) = pods
    assert after.metadata.name != before.metadata.name
    assert after.spec.node_name == target
