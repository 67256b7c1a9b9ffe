"""The Helm chart: lint, render every scenario, validate against Kubernetes 1.36, and hold the
invariants that keep a cluster safe (namespace exclusion, fail-open, RBAC scope, TLS, security)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from reporter.history.instruments import parse_instruments
from tests.chart.conftest import (
    CHART,
    RELEASE_NAMESPACE,
    Render,
    by_kind,
    helm,
    one,
    render_error,
)

pytestmark = pytest.mark.chart

SCENARIOS = sorted((CHART / "ci").glob("*.yaml"))
# Custom resources have no schema in the Kubernetes release; their shape is checked below.
CUSTOM_KINDS = {"Certificate", "Issuer", "ServiceMonitor"}


def containers(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        c
        for d in by_kind(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def deployment(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (found,) = [
        d
        for d in by_kind(objects, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def test_chart_passes_helm_lint_with_strict_checks() -> None:
    result = helm("lint", "--strict", str(CHART), "--kube-version", "1.36.3")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_every_rendered_object_is_valid_for_kubernetes_1_36(render: Render, scenario: Path) -> None:
    objects = render(scenario)
    assert objects
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            assert obj["apiVersion"]
            assert obj["metadata"]["name"]
            assert obj["spec"]
            continue
        kubernetes_validate.validate(obj, "1.36.0", strict=True)


def test_webhook_fails_open_quickly_and_sees_only_pod_creation(render: Render) -> None:
    (hook,) = one(render(), "MutatingWebhookConfiguration")["webhooks"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["timeoutSeconds"] == 2
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["rules"] == [
        {
            "operations": ["CREATE"],
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "scope": "Namespaced",
        }
    ]
    assert hook["clientConfig"]["service"]["path"] == "/mutate"


def test_webhook_never_sees_system_namespaces_or_its_own(render: Render) -> None:
    objects = render(None, "webhook.excludeNamespaces={monitoring}")
    (hook,) = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    (expr,) = [
        e
        for e in hook["namespaceSelector"]["matchExpressions"]
        if e["key"] == "kubernetes.io/metadata.name"
    ]
    assert expr["operator"] == "NotIn"
    assert {"kube-system", "kube-node-lease", RELEASE_NAMESPACE, "monitoring"} <= set(
        expr["values"]
    )


def test_webhook_match_conditions_keep_unrelated_pods_away(render: Render) -> None:
    (hook,) = one(render(), "MutatingWebhookConfiguration")["webhooks"]
    conditions = {c["name"]: c["expression"] for c in hook["matchConditions"]}
    assert "stellar.org/role" in conditions["read-pool-or-opted-in"]
    assert "disabled" in conditions["not-opted-out"]
    assert "nodeName" in conditions["not-bound"]
    assert "DaemonSet" in conditions["not-daemonset"]
    assert "config.mirror" in conditions["not-mirror-pod"]


def test_cluster_roles_only_read_nodes_and_pods(render: Render) -> None:
    for role in by_kind(render(), "ClusterRole"):
        assert role["metadata"]["labels"]["app.kubernetes.io/component"] != "tiers"
        for rule in role["rules"]:
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            if rule["resources"] == ["mutatingwebhookconfigurations"]:
                # Only its own configuration, by name: read and watched to keep the CA bundle.
                assert rule["resourceNames"]
                assert set(rule["verbs"]) <= {"get", "list", "watch", "patch"}
            else:
                assert set(rule["verbs"]) <= {"list", "watch"}
                assert "secrets" not in rule["resources"]


def test_the_webhook_watches_statefulsets_namespaces_and_pods_to_size_read_pools(
    render: Render,
) -> None:
    (role,) = [
        r
        for r in by_kind(render(), "ClusterRole")
        if r["metadata"]["name"].startswith("stellar-stellar-carbon-webhook")
    ]
    reads = {
        (group, resource)
        for rule in role["rules"]
        if set(rule["verbs"]) >= {"list", "watch"}
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert reads >= {("", "nodes"), ("", "namespaces"), ("", "pods"), ("apps", "statefulsets")}


def test_self_managed_tls_may_read_and_patch_only_the_secret_the_chart_creates(
    render: Render,
) -> None:
    objects = render()
    (role,) = [r for r in by_kind(objects, "Role") if "secrets" in r["rules"][0]["resources"]]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["stellar-stellar-carbon-webhook-tls"],
            "verbs": ["get", "patch"],
        }
    ]
    (secret,) = [
        s for s in by_kind(objects, "Secret") if s["metadata"]["name"].endswith("-webhook-tls")
    ]
    # Created empty and Opaque: an upgrade's merge never touches what the webhook wrote.
    assert secret["type"] == "Opaque"
    assert "data" not in secret
    assert "stringData" not in secret
    env = env_of(deployment(objects, "webhook"))
    assert env["STELLAR_CARBON_WEBHOOK_SECRET_NAME"]["value"] == secret["metadata"]["name"]
    assert env["STELLAR_CARBON_WEBHOOK_TLS_MODE"]["value"] == "self-managed"
    assert (
        env["STELLAR_CARBON_WEBHOOK_CONFIG_NAME"]["value"]
        == one(objects, "MutatingWebhookConfiguration")["metadata"]["name"]
    )


def test_cert_manager_mode_issues_a_certificate_for_the_service_names(render: Render) -> None:
    objects = render(CHART / "ci" / "cert-manager-values.yaml")
    cert = one(objects, "Certificate")
    service = "stellar-stellar-carbon-webhook"
    assert cert["spec"]["dnsNames"] == [
        service,
        f"{service}.{RELEASE_NAMESPACE}",
        f"{service}.{RELEASE_NAMESPACE}.svc",
    ]
    config = one(objects, "MutatingWebhookConfiguration")
    assert (
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == f"{RELEASE_NAMESPACE}/{service}"
    )
    assert not [r for r in by_kind(objects, "Role") if "secrets" in str(r["rules"])]


def test_existing_secret_mode_uses_the_given_ca_bundle(render: Render) -> None:
    objects = render(CHART / "ci" / "existing-secret-values.yaml")
    (hook,) = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]).startswith(b"-----BEGIN CERTIFICATE")
    volumes = deployment(objects, "webhook")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "my-webhook-tls"}} in volumes


def test_every_container_runs_locked_down(render: Render) -> None:
    for scenario in SCENARIOS:
        for container in containers(render(scenario)):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["seccompProfile"]["type"] == "RuntimeDefault"
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]


def test_webhook_is_highly_available_and_probed_on_plain_http(render: Render) -> None:
    objects = render()
    webhook = deployment(objects, "webhook")
    assert webhook["spec"]["replicas"] == 2
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    spec = webhook["spec"]["template"]["spec"]
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    (container,) = spec["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_electricity_maps_token_reaches_pods_only_through_a_secret(render: Render) -> None:
    objects = render(
        None, "carbon.providers={electricitymaps,static}", "carbon.electricityMaps.token=s3cr3t"
    )
    (secret,) = [
        s for s in by_kind(objects, "Secret") if "electricitymaps-token" in s.get("data", {})
    ]
    assert base64.b64decode(secret["data"]["electricitymaps-token"]) == b"s3cr3t"
    for d in by_kind(objects, "Deployment"):
        env = env_of(d)
        assert env["STELLAR_CARBON_ELECTRICITYMAPS_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": secret["metadata"]["name"],
            "key": "electricitymaps-token",
        }
        assert env["STELLAR_CARBON_PROVIDERS"]["value"] == "electricitymaps,static"
    rendered_elsewhere = [o for o in objects if o["kind"] != "Secret"]
    assert "s3cr3t" not in str(rendered_elsewhere)


def test_existing_token_secret_is_referenced_not_created(render: Render) -> None:
    objects = render(CHART / "ci" / "existing-secret-values.yaml")
    assert not by_kind(objects, "Secret")
    env = env_of(deployment(objects, "reporter"))
    assert env["STELLAR_CARBON_ELECTRICITYMAPS_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "carbon-credentials",
        "key": "em-token",
    }


def test_reporter_watching_one_namespace_gets_a_role_not_cluster_wide_pods(render: Render) -> None:
    objects = render(CHART / "ci" / "redis-values.yaml")
    (pods_role,) = [r for r in by_kind(objects, "Role") if r["metadata"]["namespace"] == "stellar"]
    assert pods_role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}
    ]
    reporter_cluster_role = next(
        r for r in by_kind(objects, "ClusterRole") if "reporter" in r["metadata"]["name"]
    )
    assert all("pods" not in rule["resources"] for rule in reporter_cluster_role["rules"])


def test_shared_cache_and_overrides_reach_both_components(render: Render) -> None:
    objects = render(CHART / "ci" / "redis-values.yaml")
    regions = one(objects, "ConfigMap")
    assert "dc-frankfurt-1" in regions["data"]["regions.yaml"]
    for component in ("webhook", "reporter"):
        env = env_of(deployment(objects, component))
        assert env["STELLAR_CARBON_REDIS_URL"]["value"] == "redis://redis.cache.svc:6379/0"
        assert env["STELLAR_CARBON_REGION_OVERRIDES"]["value"] == "/etc/stellar-carbon/regions.yaml"


def test_both_services_watch_the_pods_the_selectors_name(render: Render) -> None:
    selectors = (
        "app.kubernetes.io/managed-by=stellar-operator;"
        "app.kubernetes.io/part-of in (horizon,soroban-rpc),tier!=test"
    )
    objects = render(CHART / "ci" / "redis-values.yaml")
    webhook, reporter = (env_of(deployment(objects, c)) for c in ("webhook", "reporter"))
    assert webhook["STELLAR_CARBON_WEBHOOK_POD_SELECTOR"]["value"] == selectors
    assert reporter["STELLAR_CARBON_REPORTER_POD_SELECTOR"]["value"] == selectors
    assert webhook["STELLAR_CARBON_WEBHOOK_WATCH_ALL_PODS"]["value"] == "true"

    defaults = render(CHART / "ci" / "default-values.yaml")
    webhook, reporter = (env_of(deployment(defaults, c)) for c in ("webhook", "reporter"))
    # The services' own default selectors apply; no pod watch of the whole cluster.
    assert "STELLAR_CARBON_WEBHOOK_POD_SELECTOR" not in webhook
    assert "STELLAR_CARBON_REPORTER_POD_SELECTOR" not in reporter
    assert "STELLAR_CARBON_WEBHOOK_WATCH_ALL_PODS" not in webhook


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["carbon.providers={electricitymaps}"], "no token is set"),
        (["carbon.providers={http}"], "carbon.http.url is empty"),
        (["webhook.tls.mode=secret"], "needs webhook.tls.existingSecret"),
        (["webhook.failurePolicy=Fail", "webhook.replicas=1"], "single replica"),
        (["webhook.timeoutSeconds=45"], "maximum"),
        (["webhook.tls.mode=letsencrypt"], "webhook/tls/mode"),
        (["reporter.enabled=false", "reporter.ingress.enabled=true"], "needs reporter.enabled"),
        (["webhok.replicas=2"], "additional properties 'webhok' not allowed"),
        (["stellarPods.selectors={a=b;c=d}"], "stellarPods/selectors/0"),
        (["tiers.enabled=true", "tiers.mode=apply"], "tiers/mode"),
        (["tiers.enabled=true", "tiers.step=1"], "tiers/step"),
    ],
)
def test_impossible_values_fail_with_a_message_saying_what_to_change(
    sets: list[str], message: str
) -> None:
    assert message in render_error(*sets)


def test_installing_into_kube_system_is_refused() -> None:
    result = helm("template", "x", str(CHART), "-n", "kube-system", "--kube-version", "1.36.3")
    assert result.returncode != 0
    assert "cannot be installed in kube-system" in result.stderr


# --- the tier component ---------------------------------------------------------------------------


def tiers_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "tiers"
    ]


def test_the_tier_component_is_off_by_default(render: Render) -> None:
    assert tiers_objects(render()) == []


def test_the_tier_component_may_read_and_label_nodes_and_record_events_and_nothing_else(
    render: Render,
) -> None:
    objects = tiers_objects(render(None, "tiers.enabled=true"))

    assert sorted(o["kind"] for o in objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    assert one(objects, "ClusterRole")["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "patch"]},
    ]
    # Node events go where the kubelet keeps them: creating them is granted there only.
    events = one(objects, "Role")
    assert events["metadata"]["namespace"] == "default"
    assert events["rules"] == [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]
    events_binding = one(objects, "RoleBinding")
    assert events_binding["metadata"]["namespace"] == "default"
    assert events_binding["roleRef"]["name"] == events["metadata"]["name"]
    binding = one(objects, "ClusterRoleBinding")
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": RELEASE_NAMESPACE}
    ]
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == account
    assert events_binding["subjects"] == binding["subjects"]


def test_the_tier_component_starts_in_dry_run_as_one_writer_probed_on_plain_http(
    render: Render,
) -> None:
    tiers = deployment(render(None, "tiers.enabled=true"), "tiers")

    assert tiers["spec"]["replicas"] == 1
    assert tiers["spec"]["strategy"] == {"type": "Recreate"}
    env = env_of(tiers)
    assert env["STELLAR_CARBON_TIERS_MODE"]["value"] == "dry-run"
    assert env["STELLAR_CARBON_TIERS_DWELL"]["value"] == "7200"
    assert env["STELLAR_CARBON_TIERS_HEALTH_PORT"]["value"] == "8081"
    assert "STELLAR_CARBON_PROVIDERS" in env  # the same carbon data as webhook and reporter
    (container,) = tiers["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["stellar-carbon-tiers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8081, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_the_tier_settings_reach_the_component_as_set(render: Render) -> None:
    env = env_of(deployment(render(CHART / "ci" / "tiers-values.yaml"), "tiers"))

    assert env["STELLAR_CARBON_TIERS_MODE"]["value"] == "label"
    assert env["STELLAR_CARBON_TIERS_DWELL"]["value"] == "3600"
    assert env["STELLAR_CARBON_PROVIDERS"]["value"] == "mock"


# --- the reporter's history -----------------------------------------------------------------------


def volumes_of(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spec = deployment(objects, "reporter")["spec"]["template"]["spec"]
    return {v["name"]: v for v in spec["volumes"]}


def test_the_reporter_keeps_its_history_in_an_sqlite_file_on_an_empty_dir_by_default(
    render: Render,
) -> None:
    objects = render()
    env = env_of(deployment(objects, "reporter"))
    assert env["STELLAR_CARBON_REPORTER_HISTORY_URL"]["value"] == (
        "/var/lib/stellar-carbon/history.db"
    )
    assert env["STELLAR_CARBON_REPORTER_HISTORY_RETENTION_DAYS"]["value"] == "400"
    assert "emptyDir" in volumes_of(objects)["history"]
    (container,) = deployment(objects, "reporter")["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["history"] == "/var/lib/stellar-carbon"
    assert by_kind(objects, "PersistentVolumeClaim") == []


def test_history_persistence_claims_a_volume_that_outlives_the_release(render: Render) -> None:
    objects = render(None, "reporter.history.persistence.enabled=true")
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    volume = volumes_of(objects)["history"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_a_postgresql_history_comes_from_a_secret_and_needs_no_volume(render: Render) -> None:
    objects = render(
        None, "reporter.history.existingSecret=reporter-history", "reporter.replicas=2"
    )
    env = env_of(deployment(objects, "reporter"))
    assert env["STELLAR_CARBON_REPORTER_HISTORY_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "reporter-history",
        "key": "url",
    }
    assert "history" not in volumes_of(objects)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["reporter.history.url=postgresql://u:pw@db/history"], "put the whole URL in a Secret"),
        (["reporter.history.url=mysql://db/history"], "reporter/history/url"),
        (
            ["reporter.history.persistence.enabled=true", "reporter.replicas=2"],
            "share a PostgreSQL history",
        ),
        (
            ["reporter.history.url=postgresql://db/h", "reporter.history.existingSecret=s"],
            "not both",
        ),
    ],
)
def test_impossible_history_values_fail_with_a_message_saying_what_to_change(
    sets: list[str], message: str
) -> None:
    assert message in render_error(*sets)


def test_declared_instruments_reach_the_reporter_as_a_mounted_file(render: Render) -> None:
    objects = render(
        None,
        "reporter.history.instruments[0].region=eu-west-1",
        "reporter.history.instruments[0].kind=ppa",
        "reporter.history.instruments[0].source=Wind PPA",
        "reporter.history.instruments[0].validFrom=2026-01-01",
        "reporter.history.instruments[0].validTo=2026-12-31",
        "reporter.history.instruments[0].mwh=120",
        "reporter.history.instruments[0].gramsPerKwh=0",
    )
    (config,) = [
        c for c in by_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-instruments")
    ]
    parsed = parse_instruments(yaml.safe_load(config["data"]["instruments.yaml"]), "chart")
    assert [(i.region, str(i.kind), i.mwh) for i in parsed] == [("eu-west-1", "ppa", 120)]
    env = env_of(deployment(objects, "reporter"))
    assert env["STELLAR_CARBON_REPORTER_INSTRUMENTS_FILE"]["value"] == (
        "/etc/stellar-carbon/instruments.yaml"
    )
    assert volumes_of(objects)["instruments"]["configMap"]["name"] == config["metadata"]["name"]
