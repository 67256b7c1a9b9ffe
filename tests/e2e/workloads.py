"""Workloads shaped like the Stellar-K8s operator's read pool, for the webhook to place.

kwok never starts their containers; the images and ports are there so that admission sees what
the operator would send.
"""

from __future__ import annotations

from typing import Any, Final

from kubernetes_asyncio import client as k8s

from tests.e2e.kube import as_body

READ_REPLICA: Final = {"stellar.org/role": "read-replica"}
STELLAR_CORE_IMAGE: Final = "docker.io/stellar/stellar-core:22.1.0-2194.0241e79f7.focal"


def stellar_core_container() -> dict[str, Any]:
    """A stellar-core container as the read pool runs it (kwok never starts it)."""
    return {
        "name": "stellar-core",
        "image": STELLAR_CORE_IMAGE,
        "args": ["run", "--conf", "/etc/stellar/stellar-core.cfg"],
        "ports": [
            {"name": "peer", "containerPort": 11625, "protocol": "TCP"},
            {"name": "http", "containerPort": 11626, "protocol": "TCP"},
        ],
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"memory": "2Gi"},
        },
    }


def read_replica_pod(name: str) -> dict[str, Any]:
    """A bare read-replica pod (label ``app=<name>``), e.g. to probe admission with dry runs."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**READ_REPLICA, "app": name}},
        "spec": {"containers": [stellar_core_container()]},
    }


def read_pool(name: str, replicas: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A headless Service and a StatefulSet shaped like the Stellar-K8s operator's read pool:
    the role label on the pod template, the carbon-aware annotation only on the StatefulSet
    (where the operator puts it and from where it never reaches the pods)."""
    labels = {
        "app.kubernetes.io/name": "stellar-node",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "read-pool",
        "app.kubernetes.io/managed-by": "stellar-operator",
        **READ_REPLICA,
    }
    selector = {"app.kubernetes.io/instance": name, **READ_REPLICA}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": [
                {"name": "peer", "port": 11625, "targetPort": "peer"},
                {"name": "http", "port": 11626, "targetPort": "http"},
            ],
        },
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"stellar.org/carbon-aware": "enabled"},
        },
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [stellar_core_container()],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }
    return service, statefulset


async def create_read_pool(api: k8s.ApiClient, namespace: str, name: str, replicas: int) -> str:
    """Create a read pool; return the label selector of its pods."""
    service, statefulset = read_pool(name, replicas)
    await k8s.CoreV1Api(api).create_namespaced_service(namespace, as_body(service))
    await k8s.AppsV1Api(api).create_namespaced_stateful_set(namespace, as_body(statefulset))
    return f"app.kubernetes.io/instance={name}"
