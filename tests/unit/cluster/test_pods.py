"""Reading where a pod runs, its CPU request and its Stellar role from its manifest."""

from __future__ import annotations

from typing import Any

import pytest

from shared.cluster.manifest import ManifestError
from shared.cluster.pods import STELLAR_ROLE_LABELS, pod_from_manifest, pod_role


def _container(cpu: str | None = None, limit: str | None = None, **extra: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if cpu is not None:
        resources["requests"] = {"cpu": cpu}
    if limit is not None:
        resources["limits"] = {"cpu": limit}
    return {"name": "c", "image": "stellar/stellar-core", "resources": resources, **extra}


def test_pod_manifest_becomes_pod_info() -> None:
    pod = pod_from_manifest(
        {
            "metadata": {
                "name": "mainnet-read-0",
                "namespace": "stellar",
                "labels": {"stellar.org/role": "read-replica"},
                "annotations": {"stellar.org/carbon-ranking": "us-west-2=118"},
            },
            "spec": {"nodeName": "node-a", "containers": [_container("500m"), _container("1")]},
            "status": {"phase": "Running"},
        }
    )
    assert (pod.namespace, pod.name, pod.node_name, pod.phase) == (
        "stellar",
        "mainnet-read-0",
        "node-a",
        "Running",
    )
    assert pod.labels == {"stellar.org/role": "read-replica"}
    assert pod.annotations == {"stellar.org/carbon-ranking": "us-west-2=118"}
    assert pod.cpu_request_millis == 1500


def test_unscheduled_pod_defaults_to_pending_in_the_default_namespace() -> None:
    pod = pod_from_manifest({"metadata": {"name": "p"}, "spec": {"containers": [_container()]}})
    assert (pod.namespace, pod.node_name, pod.phase, pod.cpu_request_millis) == (
        "default",
        None,
        "Pending",
        0,
    )


def test_cpu_limit_stands_in_for_a_missing_request() -> None:
    pod = pod_from_manifest(
        {"metadata": {"name": "p"}, "spec": {"containers": [_container(limit="2")]}}
    )
    assert pod.cpu_request_millis == 2000


def test_pod_cpu_request_counts_init_containers_sidecars_and_overhead() -> None:
    spec = {
        "initContainers": [
            _container("3"),  # runs alone before anything else: peak 3000m
            _container("100m", restartPolicy="Always"),  # sidecar: stays for the pod's life
            _container("200m"),  # runs beside the sidecar: 300m
        ],
        "containers": [_container("1"), _container("500m")],
        "overhead": {"cpu": "250m"},
    }
    pod = pod_from_manifest({"metadata": {"name": "p"}, "spec": spec})
    # max(app 1500m + sidecar 100m, init peak 3000m) + overhead 250m
    assert pod.cpu_request_millis == 3250


def test_malformed_pod_cpu_request_names_the_container() -> None:
    with pytest.raises(ManifestError, match=r"containers\[1\]\.resources\.requests\.cpu"):
        pod_from_manifest(
            {"metadata": {"name": "p"}, "spec": {"containers": [_container("1"), _container("x")]}}
        )


# --- Stellar roles ------------------------------------------------------------------------------


def _operator_labels(component: str, node_type: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "stellar-node",
        "app.kubernetes.io/instance": "mainnet",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "stellar-operator",
        "stellar.org/node-type": node_type,
    }


@pytest.mark.parametrize(
    ("labels", "role"),
    [
        ({"stellar.org/role": "read-replica"}, "read-replica"),
        ({"stellar.org/role": "Validator"}, "validator"),
        ({"stellar.org/role": "soroban_rpc"}, "soroban-rpc"),
        (_operator_labels("validator", "Validator"), "validator"),
        (_operator_labels("horizon", "Horizon"), "horizon"),
        (_operator_labels("sorobanrpc", "SorobanRpc"), "soroban-rpc"),
        (
            _operator_labels("validator", "Validator") | {"stellar.org/role": "read-replica"},
            "read-replica",
        ),
        ({"app.kubernetes.io/name": "stellar-core"}, "validator"),
        ({"app.kubernetes.io/name": "horizon"}, "horizon"),
        ({"app.kubernetes.io/name": "soroban-rpc"}, "soroban-rpc"),
        ({"app.kubernetes.io/name": "stellar-rpc"}, "soroban-rpc"),
        ({"app.kubernetes.io/name": "x", "app.kubernetes.io/component": "horizon"}, "horizon"),
        ({"app.kubernetes.io/component": "stellar-core"}, "validator"),
        (
            {"app.kubernetes.io/name": "stellar-node", "app.kubernetes.io/component": "validator"},
            "validator",
        ),
    ],
)
def test_stellar_role_is_read_from_known_label_conventions(
    labels: dict[str, str], role: str
) -> None:
    assert pod_role(labels) == role


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {"app": "nginx"},
        {"app.kubernetes.io/component": "validator"},  # too generic without the operator's name
        {"app.kubernetes.io/name": "stellar-node", "app.kubernetes.io/component": "db"},
        {"stellar.org/role": "bootstrap"},
    ],
)
def test_pods_without_a_stellar_role_have_none(labels: dict[str, str]) -> None:
    assert pod_role(labels) is None


def test_every_role_label_key_is_read_on_its_own() -> None:
    for key in STELLAR_ROLE_LABELS:
        assert pod_role({key: "horizon"}) == "horizon", key
