"""The preview CLI: manifests in, the pod the webhook would admit out, through ``admit``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
import yaml

from tests.unit.webhook.builders import K8S_SCHEMA
from webhook.preview import PreviewError, main, pod_from_workload

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
STATEFULSET = EXAMPLES / "statefulset-read-pool.yaml"
AT = "2026-11-26T12:00:00Z"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main([*argv, "--at", AT], out=out)
    return code, out.getvalue()


def test_statefulset_pod_is_printed_mutated_and_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(str(STATEFULSET))

    assert code == 0
    pod = yaml.safe_load(out)
    kubernetes_validate.validate(pod, K8S_SCHEMA, strict=True)
    assert pod["metadata"]["name"] == "carbon-validator-read-0"
    affinity = pod["spec"]["affinity"]
    anti = affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname", "the template's own affinity is kept"
    assert len(pod["spec"]["topologySpreadConstraints"]) == 2
    terms = affinity["nodeAffinity"][PREFERRED]
    assert terms[0]["weight"] == 100
    assert all(1 <= t["weight"] <= 100 for t in terms)
    assert pod["metadata"]["annotations"]["stellar.org/carbon-source"] == "mock"
    assert "outcome: mutated" in capsys.readouterr().err


def test_patch_output_applies_to_the_pod_from_the_template() -> None:
    code, out = run(str(STATEFULSET), "--patch")

    assert code == 0
    patch = json.loads(out)
    pod = pod_from_workload(yaml.safe_load(STATEFULSET.read_text()))
    patched = jsonpatch.apply_patch(pod, patch)
    kubernetes_validate.validate(patched, K8S_SCHEMA, strict=True)
    assert patch[0]["path"] == "/spec/affinity/nodeAffinity"


def test_require_policy_adds_a_required_region_term() -> None:
    _, out = run(str(STATEFULSET), "--policy", "require")

    required = yaml.safe_load(out)["spec"]["affinity"]["nodeAffinity"][REQUIRED]
    expression = required["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expression["key"] == "topology.kubernetes.io/region"
    assert expression["operator"] == "In"
    assert expression["values"]


def deployment(**template_metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "horizon-read", "namespace": "stellar"},
        "spec": {
            "selector": {"matchLabels": {"app": "horizon"}},
            "template": {
                "metadata": {"labels": {"app": "horizon"}, **template_metadata},
                "spec": {"containers": [{"name": "horizon", "image": "stellar/horizon:2.32"}]},
            },
        },
    }


def test_deployment_pods_are_owned_by_a_replicaset_and_opt_in_by_annotation(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "deployment.json"
    manifest.write_text(json.dumps(deployment(annotations={"stellar.org/carbon-aware": "enabled"})))

    code, out = run(str(manifest))

    pod = yaml.safe_load(out)
    assert code == 0
    assert pod["metadata"]["generateName"] == "horizon-read-"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert PREFERRED in pod["spec"]["affinity"]["nodeAffinity"]


def test_an_unselected_workload_is_printed_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(yaml.safe_dump(deployment()))

    code, out = run(str(manifest))

    assert code == 0
    assert "affinity" not in yaml.safe_load(out)["spec"]
    assert "outcome: skipped:not-selected" in capsys.readouterr().err


def test_daemonset_pods_are_skipped_as_in_the_cluster() -> None:
    daemonset = deployment()
    daemonset["kind"] = "DaemonSet"
    daemonset["spec"]["template"]["metadata"]["labels"]["stellar.org/role"] = "read-replica"

    pod = pod_from_workload(daemonset)

    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"


def test_an_inventory_file_replaces_the_demo_cluster(tmp_path: Path) -> None:
    def node(name: str, region: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"topology.kubernetes.io/region": region}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }

    inventory = tmp_path / "nodes.yaml"
    inventory.write_text(
        yaml.safe_dump({"nodes": [node("a", "eu-north-1"), node("b", "ap-southeast-2")]})
    )

    _, out = run(str(STATEFULSET), "--inventory", str(inventory))

    annotations = yaml.safe_load(out)["metadata"]["annotations"]
    ranked = [item.split("=")[0] for item in annotations["stellar.org/carbon-ranking"].split(",")]
    assert sorted(ranked) == ["ap-southeast-2", "eu-north-1"]


def test_a_manifest_without_a_pod_is_an_error_with_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "service.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")

    assert main([str(manifest)]) == 2
    assert "no Pod, Deployment, StatefulSet" in capsys.readouterr().err


def test_a_workload_without_a_template_is_refused() -> None:
    with pytest.raises(PreviewError, match=r"no spec\.template"):
        pod_from_workload({"kind": "StatefulSet", "metadata": {"name": "x"}, "spec": {}})
