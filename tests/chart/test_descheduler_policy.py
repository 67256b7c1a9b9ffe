"""The descheduler profile docs/tiers.md tells users to add is one the descheduler accepts.

Run with the descheduler binary the e2e build provides (the chart tests' tool directory): a policy
it cannot decode strictly fails before it reaches for the cluster, a good one fails only there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.tools import REPO, tools_bin
from webhook.follow import FOLLOWING_LABEL

pytestmark = pytest.mark.chart

DOC = REPO / "docs" / "tiers.md"
UNREACHABLE = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "none", "cluster": {"server": "http://127.0.0.1:1"}}],
    "users": [{"name": "none", "user": {}}],
    "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
    "current-context": "none",
}


def documented_policy() -> str:
    (policy,) = re.findall(
        r"```yaml\n(apiVersion: descheduler/v1alpha2\n.*?)```", DOC.read_text(), re.S
    )
    return str(policy)


def decode(policy: str, tmp_path: Path) -> str:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(UNREACHABLE))
    done = subprocess.run(
        [
            str(tools_bin() / "descheduler"),
            "--policy-config-file",
            str(policy_file),
            "--kubeconfig",
            str(kubeconfig),
            "--dry-run",
            "--secure-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0  # nothing to talk to
    return done.stderr


def test_the_documented_profile_only_touches_the_read_replicas_that_follow_the_tiers() -> None:
    policy = yaml.safe_load(documented_policy())
    (profile,) = policy["profiles"]
    args = {plugin["name"]: plugin["args"] for plugin in profile["pluginConfig"]}
    affinity = args["RemovePodsViolatingNodeAffinity"]
    assert affinity["nodeAffinityType"] == ["preferredDuringSchedulingIgnoredDuringExecution"]
    # The label the webhook sets on exactly the pods it gives tier terms.
    followers = {"matchLabels": {FOLLOWING_LABEL: "true"}}
    assert affinity["labelSelector"] == followers
    assert args["DefaultEvictor"]["labelSelector"] == followers
    assert affinity["namespaces"]["include"]
    assert profile["plugins"] == {"deschedule": {"enabled": ["RemovePodsViolatingNodeAffinity"]}}


def test_the_descheduler_decodes_the_documented_profile_strictly(tmp_path: Path) -> None:
    errors = decode(documented_policy(), tmp_path)

    assert "decoding" not in errors
    assert "127.0.0.1:1" in errors  # it got as far as calling the cluster


def test_a_misspelt_field_would_be_caught(tmp_path: Path) -> None:
    errors = decode(documented_policy().replace("nodeAffinityType", "nodeAffinityTypes"), tmp_path)

    assert "strict decoding error: unknown field" in errors
    assert "nodeAffinityTypes" in errors
