"""The chart's Karmada controller: off by default, two replicas and a Lease, dry-run unless set,
the Karmada kubeconfig from a Secret and no access to the cluster it runs in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.conftest import CHART, Render, by_kind, render_error
from tests.chart.test_chart import deployment, env_of

SECRET = "karmada.kubeconfigSecret.name=karmada-kubeconfig"


def karmada_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "karmada"
    ]


def test_the_karmada_controller_is_off_by_default(render: Render) -> None:
    assert karmada_objects(render()) == []


def test_it_runs_two_replicas_in_dry_run_without_a_token_of_this_cluster(render: Render) -> None:
    objects = karmada_objects(render(None, "karmada.enabled=true", SECRET))

    assert sorted(o["kind"] for o in objects) == ["Deployment", "Service", "ServiceAccount"]
    controller = deployment(objects, "karmada")
    assert controller["spec"]["replicas"] == 2
    pod = controller["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    env = env_of(controller)
    assert env["STELLAR_CARBON_KARMADA_MODE"]["value"] == "dry-run"
    assert env["STELLAR_CARBON_KARMADA_DWELL"]["value"] == "3600"
    assert env["STELLAR_CARBON_KARMADA_MARGIN"]["value"] == "0.1"
    assert env["STELLAR_CARBON_KARMADA_LEASE_NAMESPACE"]["value"] == "karmada-system"
    assert "STELLAR_CARBON_PROVIDERS" in env  # the same carbon data as webhook and reporter
    kubeconfig = env["STELLAR_CARBON_KARMADA_KUBECONFIG"]["value"]
    (container,) = pod["containers"]
    assert container["args"] == ["stellar-carbon-multicluster"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "karmada-kubeconfig"]
    assert kubeconfig == f"{mount['mountPath']}/kubeconfig"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "karmada-kubeconfig"]
    assert volume["secret"] == {
        "secretName": "karmada-kubeconfig",
        "items": [{"key": "kubeconfig", "path": "kubeconfig"}],
    }
    assert by_kind(objects, "ClusterRole") == []
    assert by_kind(objects, "Role") == []


def test_the_reporter_reads_the_policies_from_the_controllers_service(render: Render) -> None:
    objects = render(None, "karmada.enabled=true", SECRET, "networkPolicy.enabled=true")

    (service,) = by_kind(karmada_objects(objects), "Service")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8082, "targetPort": "http", "protocol": "TCP"}
    ]
    controller = deployment(objects, "karmada")
    assert service["spec"]["selector"] == controller["spec"]["selector"]["matchLabels"]
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    url = env_of(deployment(objects, "reporter"))["STELLAR_CARBON_REPORTER_KARMADA_URL"]
    assert url == {"name": url["name"], "value": f"http://{name}.{namespace}.svc:8082"}
    (policy,) = [
        p
        for p in by_kind(objects, "NetworkPolicy")
        if p["metadata"]["labels"]["app.kubernetes.io/component"] == "reporter"
    ]
    assert {
        "ports": [{"port": 8082, "protocol": "TCP"}],
        "to": [{"podSelector": {"matchLabels": service["spec"]["selector"]}}],
    } in policy["spec"]["egress"]


def test_a_controller_elsewhere_is_read_from_the_url_given(render: Render) -> None:
    elsewhere = "http://karmada.other.svc:8082"
    alone = env_of(deployment(render(None, f"reporter.karmadaUrl={elsewhere}"), "reporter"))
    assert alone["STELLAR_CARBON_REPORTER_KARMADA_URL"]["value"] == elsewhere
    off = env_of(deployment(render(), "reporter"))
    assert "STELLAR_CARBON_REPORTER_KARMADA_URL" not in off
    assert "karmadaUrl" in render_error("reporter.karmadaUrl=ftp://karmada")


def test_the_karmada_settings_reach_the_controller_as_set(render: Render) -> None:
    env = env_of(deployment(render(CHART / "ci" / "karmada-values.yaml"), "karmada"))

    assert env["STELLAR_CARBON_KARMADA_MODE"]["value"] == "apply"
    assert env["STELLAR_CARBON_KARMADA_LABEL_SELECTOR"]["value"] == "team=stellar"
    assert env["STELLAR_CARBON_KARMADA_DWELL"]["value"] == "1800"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["karmada.enabled=true"], "karmada.enabled needs karmada.kubeconfigSecret.name"),
        (["karmada.enabled=true", SECRET, "karmada.mode=label"], "karmada/mode"),
        (["karmada.enabled=true", SECRET, "karmada.maxMovedShare=2"], "karmada/maxMovedShare"),
    ],
)
def test_impossible_karmada_values_fail_saying_what_to_change(
    values: list[str], message: str
) -> None:
    assert message in render_error(*values)
