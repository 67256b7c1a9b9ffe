"""``helm install`` of the chart into the real control plane, and what the installed objects allow.

The API server validates and admits every object of the release; the controller manager and kwok
roll its Deployments out (kwok fakes the pods, so no container runs). The rights the chart's RBAC
grants are then exercised by running our services as local processes under the chart's own
ServiceAccounts, with the environment the chart's Deployments set.

Not covered here: ``ci/cert-manager-values.yaml``, whose Issuer and Certificate need the
cert-manager CRDs this control plane does not have (the chart tests render it), and the
ServiceMonitor of ``ci/redis-values.yaml`` (a prometheus-operator CRD; disabled with ``--set``).
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s

from tests.e2e.carbon_api import mock_carbon_env
from tests.e2e.chart import (
    CHART,
    HELM_TIMEOUT,
    WEBHOOK,
    Helm,
    Release,
    api_path,
    chart_process,
    container_env,
    install,
    service_account_of,
)
from tests.e2e.cluster import ApiStatusError, ControlPlane, free_port
from tests.e2e.fleet import FakeNode
from tests.e2e.kube import as_body, dry_run_pod
from tests.e2e.probes import http_get, http_json, prometheus_samples, tls_handshake_verified
from tests.e2e.processes import FailureLogs, LocalService
from tests.e2e.services import (
    MWC_PATH,
    ca_bundle_of,
    create_namespace,
    delete_namespace,
    service_account_kubeconfig,
)
from tests.e2e.workloads import read_replica_pod
from webhook.certs import generate_ca

pytestmark = pytest.mark.e2e


# Where each kind the chart renders lives in the API (plural, and whether it is namespaced).


@pytest.fixture(scope="module")
def release(
    helm: Helm, control_plane: ControlPlane, fake_nodes: tuple[FakeNode, ...]
) -> Iterator[Release]:
    """The chart with default values."""
    with install(helm, control_plane, "carbon") as release:
        yield release


@pytest.fixture(scope="module")
def redis_release(
    helm: Helm, control_plane: ControlPlane, fake_nodes: tuple[FakeNode, ...]
) -> Iterator[tuple[Release, str]]:
    """The chart with ci/redis-values.yaml, pods watched in one namespace; yields that too."""
    watched = create_namespace(control_plane, "stellar-")
    try:
        with install(
            helm,
            control_plane,
            "carbon-redis",
            "--values",
            str(CHART / "ci" / "redis-values.yaml"),
            "--set",
            "reporter.serviceMonitor.enabled=false",
            "--set",
            f"reporter.watchNamespace={watched}",
        ) as release:
            yield release, watched
    finally:
        delete_namespace(control_plane, watched)


@pytest.fixture
def service_logs(request: pytest.FixtureRequest) -> Iterator[list[LocalService]]:
    """Services a test appends here get their log tails into its report if it fails."""
    services: list[LocalService] = []
    plugin = FailureLogs(services)
    request.config.pluginmanager.register(plugin)
    try:
        yield services
    finally:
        for service in services:
            service.stop()
        request.config.pluginmanager.unregister(plugin)


# --- helpers ------------------------------------------------------------------------------------


def admission_counter(control_plane: ControlPlane, metric: str) -> float:
    """Sum of an API server admission counter over the label sets naming the chart's webhook
    (0 before the first increment: the API server registers these series lazily)."""
    request = urllib.request.Request(f"{control_plane.server}/metrics")
    request.add_header("Authorization", f"Bearer {control_plane.token}")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=control_plane.ca.ssl_context()),
    )
    with opener.open(request, timeout=10) as response:
        text = response.read().decode()
    # The client library's parser names every counter sample ``<family>_total``.
    wanted = metric.removesuffix("_total") + "_total"
    return sum(
        value
        for (name, labels), value in prometheus_samples(text).items()
        if name == wanted and ("name", WEBHOOK) in labels
    )


def start_chart_reporter(
    control_plane: ControlPlane,
    release: Release,
    chart_env: Mapping[str, str],
    services: list[LocalService],
    log_dir: Path,
    *,
    timeout: float = 60.0,
) -> str:
    """``python -m reporter`` with ``chart_env`` from the release's Deployment, as the chart's
    ServiceAccount, on loopback and the mock carbon data; its API URL once health answers 200."""
    deployment = release.one("Deployment", "reporter")
    port = free_port()
    env = {
        **chart_env,
        **mock_carbon_env(),
        "STELLAR_CARBON_REPORTER_HOST": "127.0.0.1",
        "STELLAR_CARBON_REPORTER_PORT": str(port),
        "KUBECONFIG": str(
            service_account_kubeconfig(
                control_plane,
                release.namespace,
                service_account_of(deployment),
                log_dir / "reporter-sa.kubeconfig",
            )
        ),
    }
    reporter = chart_process("chart-reporter", "reporter", env, log_dir, services)
    api = f"http://127.0.0.1:{port}/api/v1/sustainability"
    reporter.wait_until("health 200", lambda: http_get(f"{api}/health")[0] == 200, timeout=timeout)
    return api


# --- tests --------------------------------------------------------------------------------------


def test_default_install_is_accepted_and_its_deployments_roll_out(
    release: Release, control_plane: ControlPlane
) -> None:
    kinds = Counter(o["kind"] for o in release.objects)

    assert kinds >= Counter(
        {
            "Deployment": 2,
            "Service": 2,
            "ServiceAccount": 2,
            "ClusterRole": 2,
            "ClusterRoleBinding": 2,
            "Role": 1,
            "RoleBinding": 1,
            "MutatingWebhookConfiguration": 1,
            "PodDisruptionBudget": 1,
        }
    )
    for obj in release.objects:
        stored = control_plane.request("GET", api_path(obj, release.namespace))
        assert stored["metadata"]["labels"]["app.kubernetes.io/instance"] == release.name
    for deployment in release.of_kind("Deployment"):
        stored = control_plane.request("GET", api_path(deployment, release.namespace))
        assert stored["status"].get("readyReplicas") == stored["spec"]["replicas"]
    (budget,) = release.of_kind("PodDisruptionBudget")
    pdb = control_plane.request("GET", api_path(budget, release.namespace))
    assert pdb["status"]["currentHealthy"] >= pdb["spec"]["minAvailable"]


async def test_installed_webhook_sees_only_read_pool_pods_and_fails_open(
    release: Release,
    control_plane: ControlPlane,
    kube_api: k8s.ApiClient,
    namespace: str,
) -> None:
    (config,) = release.of_kind("MutatingWebhookConfiguration")
    stored = control_plane.request("GET", api_path(config, release.namespace))
    (webhook,) = stored["webhooks"]
    assert webhook["name"] == WEBHOOK
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["sideEffects"] == "None"
    assert webhook["timeoutSeconds"] == 2
    assert webhook["clientConfig"]["service"]["namespace"] == release.namespace
    assert [c["name"] for c in webhook["matchConditions"]] == [
        "read-pool-or-opted-in",
        "not-opted-out",
        "not-bound",
        "not-mirror-pod",
        "not-daemonset",
    ]
    (excluded,) = webhook["namespaceSelector"]["matchExpressions"]
    assert {"kube-system", "kube-node-lease", release.namespace} <= set(excluded["values"])

    # A plain pod never reaches the webhook: its match conditions exclude it in the API server.
    excluded_before = admission_counter(
        control_plane, "apiserver_admission_match_condition_exclusions_total"
    )
    plain = read_replica_pod("plain")
    plain["metadata"]["labels"] = {"app": "plain"}
    await dry_run_pod(kube_api, namespace, plain)
    excluded_after = admission_counter(
        control_plane, "apiserver_admission_match_condition_exclusions_total"
    )
    assert excluded_after > excluded_before
    # A read-pool pod does, finds no server behind the Service, and is admitted anyway.
    failed_open_before = admission_counter(
        control_plane, "apiserver_admission_webhook_fail_open_count"
    )
    created = await k8s.CoreV1Api(kube_api).create_namespaced_pod(
        namespace, as_body(read_replica_pod("reader"))
    )
    assert created.metadata.name == "reader"
    assert admission_counter(control_plane, "apiserver_admission_webhook_fail_open_count") > (
        failed_open_before
    )


def test_webhook_as_the_chart_service_account_fills_its_secret_and_keeps_the_ca_injected(
    release: Release,
    control_plane: ControlPlane,
    service_logs: list[LocalService],
    tmp_path: Path,
) -> None:
    deployment = release.one("Deployment", "webhook")
    chart_env = container_env(deployment)
    kubeconfig = service_account_kubeconfig(
        control_plane,
        release.namespace,
        service_account_of(deployment),
        tmp_path / "webhook-sa.kubeconfig",
    )
    port, health_port = free_port(), free_port()
    env = {
        **chart_env,
        "POD_NAMESPACE": release.namespace,  # the chart sets it from the downward API
        # Outside a pod: loopback ports, and the service account's token from a kubeconfig.
        "STELLAR_CARBON_WEBHOOK_PORT": str(port),
        "STELLAR_CARBON_WEBHOOK_HEALTH_PORT": str(health_port),
        "STELLAR_CARBON_WEBHOOK_BIND_ADDRESS": "127.0.0.1",
        "STELLAR_CARBON_WEBHOOK_KUBECONFIG": str(kubeconfig),
    }
    config_name = chart_env["STELLAR_CARBON_WEBHOOK_CONFIG_NAME"]
    secret_name = chart_env["STELLAR_CARBON_WEBHOOK_SECRET_NAME"]
    service_name = chart_env["STELLAR_CARBON_WEBHOOK_SERVICE_NAME"]

    webhook = chart_process("chart-webhook", "webhook", env, tmp_path, service_logs)
    webhook.wait_until(
        "/readyz 200", lambda: http_get(f"http://127.0.0.1:{health_port}/readyz")[0] == 200
    )

    webhook.wait_until(
        "caBundle injected into the chart's configuration",
        lambda: bool(ca_bundle_of(control_plane, config_name)),
    )
    # The Secret is the chart's (no create right needed), filled without touching its metadata.
    secret = control_plane.request(
        "GET", f"/api/v1/namespaces/{release.namespace}/secrets/{secret_name}"
    )
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert set(secret["data"]) >= {"tls.crt", "tls.key", "ca.crt"}
    # The certificate is valid for the Service name the API server dials.
    ca_pem = ca_bundle_of(control_plane, config_name)
    assert tls_handshake_verified(port, ca_pem, f"{service_name}.{release.namespace}.svc")

    # The watch on its configuration runs on the rights the chart grants: a removed caBundle
    # comes back from the running process.
    path = f"{MWC_PATH}/{config_name}"
    live = control_plane.request("GET", path)
    for hook in live["webhooks"]:
        hook["clientConfig"].pop("caBundle", None)
    control_plane.request("PATCH", path, {"webhooks": live["webhooks"]})
    webhook.wait_until(
        "caBundle restored",
        lambda: ca_bundle_of(control_plane, config_name) == ca_pem,
        timeout=10,
    )
    assert webhook.starts == 1


def test_reporter_as_the_chart_service_account_watches_nodes_and_pods(
    release: Release,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    service_logs: list[LocalService],
    tmp_path: Path,
) -> None:
    api = start_chart_reporter(
        control_plane,
        release,
        container_env(release.one("Deployment", "reporter")),
        service_logs,
        tmp_path,
    )

    checks = {c["name"]: c for c in http_json(f"{api}/health")["checks"]}
    assert checks["kubernetes"]["status"] == "ok", checks["kubernetes"]
    nodes = http_json(f"{api}/nodes")
    assert {n["name"] for n in nodes["nodes"]} >= {f.name for f in fake_nodes}


def test_uninstall_removes_every_object_of_the_release(
    release: Release, helm: Helm, control_plane: ControlPlane
) -> None:
    helm("uninstall", release.name, "--namespace", release.namespace, "--wait")

    for obj in release.objects:
        with pytest.raises(ApiStatusError) as gone:
            control_plane.request("GET", api_path(obj, release.namespace))
        assert gone.value.status == 404, f"{obj['kind']}/{obj['metadata']['name']}"


def test_install_with_the_redis_ci_values_needs_no_custom_resources(
    redis_release: tuple[Release, str], control_plane: ControlPlane
) -> None:
    release, watched = redis_release
    kinds = Counter(o["kind"] for o in release.objects)

    assert kinds >= Counter({"Ingress": 1, "NetworkPolicy": 2, "Secret": 1, "ConfigMap": 1})
    for obj in release.objects:
        control_plane.request("GET", api_path(obj, release.namespace))
    role = control_plane.request(
        "GET",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{watched}/roles",
    )
    assert len(role["items"]) == 1
    webhook = control_plane.request(
        "GET", api_path(release.one("Deployment", "webhook"), release.namespace)
    )
    assert webhook["status"]["readyReplicas"] == 3


def test_reporter_with_a_watch_namespace_runs_on_the_rights_the_chart_grants(
    redis_release: tuple[Release, str],
    control_plane: ControlPlane,
    service_logs: list[LocalService],
    tmp_path: Path,
) -> None:
    release, _ = redis_release
    # Only the reporter's own settings: the release's carbon APIs, Redis and the mounted region
    # overrides do not exist outside a cluster; carbon data comes from the mock provider.
    reporter_env = {
        name: value
        for name, value in container_env(release.one("Deployment", "reporter")).items()
        if name.startswith("STELLAR_CARBON_REPORTER_")
    }
    assert "STELLAR_CARBON_REPORTER_POD_NAMESPACE" in reporter_env

    api = start_chart_reporter(
        control_plane, release, reporter_env, service_logs, tmp_path, timeout=15
    )

    checks = {c["name"]: c for c in http_json(f"{api}/health")["checks"]}
    assert checks["kubernetes"]["status"] == "ok", checks["kubernetes"]


def test_an_upgrade_keeps_the_injected_ca_bundle_and_rolls_out_the_new_values(
    helm: Helm, control_plane: ControlPlane, fake_nodes: tuple[FakeNode, ...]
) -> None:
    with install(helm, control_plane, "carbon-upgrade") as release:
        (config,) = release.of_kind("MutatingWebhookConfiguration")
        path = api_path(config, release.namespace)
        # What the self-managed webhook writes after install; the chart leaves the field out.
        ca = generate_ca(common_name="upgrade-test-ca", now=datetime.now(UTC), days=1).cert_pem
        live = control_plane.request("GET", path)
        for webhook in live["webhooks"]:
            webhook["clientConfig"]["caBundle"] = base64.b64encode(ca).decode()
        control_plane.request("PATCH", path, {"webhooks": live["webhooks"]})

        helm(
            "upgrade", release.name, str(CHART), "--namespace", release.namespace,
            "--reuse-values", "--set", "webhook.replicas=3", "--wait", "--timeout", HELM_TIMEOUT,
        )  # fmt: skip

        assert ca_bundle_of(control_plane, config["metadata"]["name"]) == ca
        deployment = control_plane.request(
            "GET", api_path(release.one("Deployment", "webhook"), release.namespace)
        )
        assert deployment["spec"]["replicas"] == 3
        assert deployment["status"].get("readyReplicas") == 3
        history = json.loads(
            helm("history", release.name, "--namespace", release.namespace, "-o", "json")
        )
        assert [revision["status"] for revision in history] == ["superseded", "deployed"]
