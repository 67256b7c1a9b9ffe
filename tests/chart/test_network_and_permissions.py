"""What the chart lets each component do and reach: the reporter's optional node-metrics grant and
the NetworkPolicies a platform team can turn on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.conftest import CHART, Render, by_kind

pytestmark = pytest.mark.chart

DNS = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
API_SERVER_PORTS = [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]
PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


def of_component(objects: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    (found,) = [
        o
        for o in by_kind(objects, kind)
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def reporter_env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = of_component(objects, "Deployment", "reporter")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def metrics_api_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    role = of_component(objects, "ClusterRole", "reporter")
    return [r for r in role["rules"] if r["apiGroups"] == ["metrics.k8s.io"]]


def test_the_reporter_reads_node_metrics_only_where_the_chart_grants_them(render: Render) -> None:
    default = render()
    assert metrics_api_rules(default) == []
    assert "STELLAR_CARBON_REPORTER_NODE_METRICS" not in reporter_env(default)

    enabled = render(None, "reporter.nodeMetrics.enabled=true")

    assert metrics_api_rules(enabled) == [
        {"apiGroups": ["metrics.k8s.io"], "resources": ["nodes"], "verbs": ["list"]}
    ]
    env = reporter_env(enabled)
    assert env["STELLAR_CARBON_REPORTER_NODE_METRICS"] == "true"
    assert env["STELLAR_CARBON_REPORTER_NODE_METRICS_INTERVAL_SECONDS"] == "60"


def test_the_reporter_reads_nodes_and_pods_and_writes_nothing(render: Render) -> None:
    role = of_component(render(), "ClusterRole", "reporter")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    ]


def test_the_webhook_watches_only_its_own_configuration(render: Render) -> None:
    objects = render()
    role = of_component(objects, "ClusterRole", "webhook")
    (config,) = by_kind(objects, "MutatingWebhookConfiguration")
    (rule,) = [r for r in role["rules"] if r["apiGroups"] == ["admissionregistration.k8s.io"]]
    assert rule == {
        "apiGroups": ["admissionregistration.k8s.io"],
        "resources": ["mutatingwebhookconfigurations"],
        "resourceNames": [config["metadata"]["name"]],
        "verbs": ["get", "list", "watch", "patch"],
    }


def test_network_policies_are_off_by_default(render: Render) -> None:
    assert by_kind(render(), "NetworkPolicy") == []


def test_the_webhook_policy_admits_the_api_server_and_scrapers_and_reaches_only_what_it_needs(
    render: Render,
) -> None:
    policy = of_component(render(CHART / "ci" / "redis-values.yaml"), "NetworkPolicy", "webhook")
    spec = policy["spec"]

    assert spec["policyTypes"] == ["Ingress", "Egress"]
    admission, metrics = spec["ingress"]
    # The API server's source differs per distribution: the admission port is open to all.
    assert admission == {"ports": [{"port": "https", "protocol": "TCP"}]}
    assert metrics == {"ports": [{"port": "http", "protocol": "TCP"}], "from": [PROMETHEUS]}
    assert spec["egress"] == [
        DNS,
        {"ports": API_SERVER_PORTS, "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]},
        {"ports": [{"port": p, "protocol": "TCP"} for p in (80, 8080, 6379)]},
    ]


def test_the_reporter_policy_admits_its_readers_and_prometheus_only(render: Render) -> None:
    readers = {"podSelector": {"matchLabels": {"app": "dashboard"}}}
    objects = render(
        CHART / "ci" / "redis-values.yaml",
        "networkPolicy.reporterFrom[0].podSelector.matchLabels.app=dashboard",
    )
    spec = of_component(objects, "NetworkPolicy", "reporter")["spec"]

    assert spec["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}], "from": [readers, PROMETHEUS]}
    ]
    assert spec["egress"][0] == DNS


def test_without_egress_rules_the_policies_restrict_ingress_only(render: Render) -> None:
    objects = render(None, "networkPolicy.enabled=true", "networkPolicy.egress.enabled=false")
    for policy in by_kind(objects, "NetworkPolicy"):
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert "egress" not in policy["spec"]
    reporter = of_component(objects, "NetworkPolicy", "reporter")["spec"]
    assert reporter["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_egress_by_default_allows_the_api_server_and_https_anywhere(render: Render) -> None:
    objects = render(None, "networkPolicy.enabled=true")
    for policy in by_kind(objects, "NetworkPolicy"):
        assert policy["spec"]["egress"] == [
            DNS,
            {"ports": API_SERVER_PORTS},
            {"ports": [{"port": 443, "protocol": "TCP"}]},
        ]


def test_a_reporter_with_its_history_on_postgresql_may_reach_that_server_and_nothing_more(
    render: Render,
) -> None:
    database = {"ipBlock": {"cidr": "10.20.0.5/32"}}
    objects = render(
        None,
        "networkPolicy.enabled=true",
        "reporter.history.existingSecret=history-url",
        "networkPolicy.egress.historyTo[0].ipBlock.cidr=10.20.0.5/32",
    )

    reporter = of_component(objects, "NetworkPolicy", "reporter")["spec"]["egress"]
    assert reporter[-1] == {"ports": [{"port": 5432, "protocol": "TCP"}], "to": [database]}
    webhook = of_component(objects, "NetworkPolicy", "webhook")["spec"]["egress"]
    assert all(rule.get("to") != [database] for rule in webhook)


PERMISSION_TABLES = {
    "**Webhook**": "webhook",
    "**Reporter**": "reporter",
    "**Tier component**": "tiers",
}

Grant = tuple[str, str, str, str, bool]
"""apiGroup, resource, verb, ``cluster`` or ``namespace``, narrowed by resourceNames."""


def documented_grants() -> dict[str, set[Grant]]:
    """The Permissions section of the chart README, one grant per verb."""
    text = (CHART / "README.md").read_text()
    section = text.split("\n## Permissions\n", 1)[1].split("\n## ", 1)[0]
    grants: dict[str, set[Grant]] = {}
    component = None
    for line in section.splitlines():
        heading = next((c for h, c in PERMISSION_TABLES.items() if line.startswith(h)), None)
        if heading is not None:
            component = heading
            grants[component] = set()
        elif line.startswith("| `") and component is not None:
            group, resource, verbs, scope, names = (c.strip() for c in line.strip("|").split("|"))
            for verb in verbs.split(", "):
                grants[component].add(
                    (group.strip('`"'), resource, verb, scope.split()[0].strip(","), names != "—")
                )
    return grants


def rendered_grants(objects: list[dict[str, Any]], component: str) -> set[Grant]:
    grants: set[Grant] = set()
    for kind, scope in (("ClusterRole", "cluster"), ("Role", "namespace")):
        for role in by_kind(objects, kind):
            if role["metadata"]["labels"]["app.kubernetes.io/component"] != component:
                continue
            for rule in role["rules"]:
                grants |= {
                    (group, resource, verb, scope, "resourceNames" in rule)
                    for group in rule["apiGroups"]
                    for resource in rule["resources"]
                    for verb in rule["verbs"]
                }
    return grants


def test_the_readme_lists_every_permission_the_chart_grants_and_no_other(render: Render) -> None:
    # Everything optional that adds a grant turned on: node metrics and the tier component.
    objects = render(None, "reporter.nodeMetrics.enabled=true", "tiers.enabled=true")
    documented = documented_grants()

    assert set(documented) == set(PERMISSION_TABLES.values())
    for component, grants in documented.items():
        assert rendered_grants(objects, component) == grants, component
