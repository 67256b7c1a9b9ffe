"""The upstream Stellar-K8s operator's read pool, as the operator writes it, for the real cluster.

The StatefulSet and HorizontalPodAutoscaler come from ``tests/fixtures/operator-read-pool`` (the
operator's own output against a real API server) with only three changes a test needs: the
replica count (and the HPA's bounds, which the operator derives from it the same way), no
``ownerReferences`` (their StellarNode does not exist here, so the garbage collector would delete
them at once) and no namespace (each test brings its own). The StellarNode's main pod is a
one-replica StatefulSet with the operator's standard labels and no role label: the read pool's
anti-affinity and spread selectors count it, the webhook does not select it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Final

import yaml
from kubernetes_asyncio import client as k8s

from tests.e2e.kube import as_body

TEMPLATE: Final = Path(__file__).parents[1] / "fixtures" / "operator-read-pool"
NODE_NAME: Final = "carbon-validator"
"""The StellarNode the captured read pool belongs to."""
READ_POOL: Final = f"{NODE_NAME}-read"
READ_POOL_SELECTOR: Final = "stellar.org/role=read-replica"
MAIN_SELECTOR: Final = f"app.kubernetes.io/instance={NODE_NAME},!stellar.org/role"
HPA_CEILING: Final = 20
"""The operator's HPA goes up to ``min(3 × replicas, 20)``."""


def _load(name: str) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((TEMPLATE / name).read_text(encoding="utf-8"))
    metadata = manifest["metadata"]
    metadata.pop("ownerReferences", None)
    metadata.pop("namespace", None)
    return manifest


def read_statefulset(replicas: int, *, soft: bool = False) -> dict[str, Any]:
    """The operator's ``<node>-read`` StatefulSet with ``replicas`` pods, template untouched.

    ``soft``: what the operator writes instead for a StellarNode with ``podAntiAffinity: Soft``
    (its ``build_pod_anti_affinity`` and ``build_topology_spread_constraints``): the same term as a
    preferred anti-affinity of weight 100, and both spreads ``ScheduleAnyway``.
    """
    statefulset = _load("read-statefulset.yaml")
    statefulset["spec"]["replicas"] = replicas
    if soft:
        spec = statefulset["spec"]["template"]["spec"]
        anti = spec["affinity"]["podAntiAffinity"]
        (term,) = anti.pop("requiredDuringSchedulingIgnoredDuringExecution")
        anti["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": 100, "podAffinityTerm": term}
        ]
        for constraint in spec["topologySpreadConstraints"]:
            constraint["whenUnsatisfiable"] = "ScheduleAnyway"
    return statefulset


def read_hpa(replicas: int) -> dict[str, Any]:
    """The operator's HPA for a pool of ``replicas``: from ``replicas`` to min(3 × replicas, 20)."""
    hpa = _load("read-hpa.yaml")
    hpa["spec"]["minReplicas"] = replicas
    hpa["spec"]["maxReplicas"] = min(3 * replicas, HPA_CEILING)
    return hpa


def main_statefulset() -> dict[str, Any]:
    """The StellarNode's own (non-read) pod: the operator's standard labels, no role label."""
    template = read_statefulset(1)["spec"]["template"]
    labels = {
        key: value
        for key, value in template["metadata"]["labels"].items()
        if key != "stellar.org/role"
    }
    spec = copy.deepcopy(template["spec"])
    for key in ("affinity", "topologySpreadConstraints"):
        spec.pop(key, None)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": NODE_NAME, "labels": labels},
        "spec": {
            "replicas": 1,
            "serviceName": NODE_NAME,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec},
        },
    }


async def create_main_pod(
    api: k8s.ApiClient, namespace: str, *, node_selector: dict[str, str] | None = None
) -> None:
    """The StellarNode's main pod, which the read pool's rules count; ``node_selector`` keeps it
    on nodes the test does not want the pool to need."""
    main = main_statefulset()
    if node_selector:
        main["spec"]["template"]["spec"]["nodeSelector"] = node_selector
    await k8s.AppsV1Api(api).create_namespaced_stateful_set(namespace, as_body(main))


async def create_operator_read_pool(
    api: k8s.ApiClient,
    namespace: str,
    replicas: int,
    *,
    hpa: bool = True,
    soft: bool = False,
    annotations: dict[str, str] | None = None,
) -> None:
    """The read-pool StatefulSet (and its HPA) as the operator creates them; ``annotations`` are
    added to the StatefulSet's own (the operator puts ``stellar.org/carbon-aware`` there)."""
    statefulset = read_statefulset(replicas, soft=soft)
    if annotations:
        statefulset["metadata"].setdefault("annotations", {}).update(annotations)
    await k8s.AppsV1Api(api).create_namespaced_stateful_set(namespace, as_body(statefulset))
    if hpa:
        autoscaling = k8s.AutoscalingV2Api(api)
        await autoscaling.create_namespaced_horizontal_pod_autoscaler(
            namespace, as_body(read_hpa(replicas))
        )


async def create_read_pool_budget(api: k8s.ApiClient, namespace: str, min_available: int) -> None:
    """A PodDisruptionBudget over the read pool's replicas, as a platform team adds one."""
    await k8s.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        namespace,
        as_body(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": READ_POOL},
                "spec": {
                    "minAvailable": min_available,
                    "selector": {"matchLabels": {"stellar.org/role": "read-replica"}},
                },
            }
        ),
    )
