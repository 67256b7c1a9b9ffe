"""AdmissionReview bodies as the API server sends them for read-pool pods.

``operator_read_pods`` are the upstream Stellar-K8s operator's read-pool pods as its StatefulSet
creates them (its captured template: required hostname anti-affinity, zone and hostname spreads),
one per ordinal. ``read_pool_pod`` is a Horizon read replica as an operator's ReplicaSet creates
it, after the API server's own admission plugins ran (service-account token volume, default
tolerations): a few KB. ``large_pod`` is the same pod carrying many sidecars and environment
variables, about 200 KB, the size where JSON parsing starts to dominate.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from typing import Any

NAMESPACE = "stellar"


def read_pool_pod(index: int = 0) -> dict[str, Any]:
    """A Horizon read replica pod (labels as the Stellar operator sets them), unscheduled."""
    template_hash = "7f9c8d6b5"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"horizon-read-{template_hash}-",
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": "horizon",
                "app.kubernetes.io/instance": "pubnet-read",
                "app.kubernetes.io/component": "read-replica",
                "app.kubernetes.io/managed-by": "stellar-operator",
                "stellar.org/role": "read-replica",
                "stellar.org/network": "pubnet",
                "pod-template-hash": template_hash,
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "6060",
                "stellar.org/config-hash": f"{index:08x}c0ffee",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"horizon-read-{template_hash}",
                    "uid": "5c0a5e2e-3f0b-4a8e-9d3e-0b7f5a1c2d3e",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "serviceAccountName": "horizon",
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
            "initContainers": [
                {
                    "name": "wait-for-db",
                    "image": "postgres:16-alpine",
                    "command": ["sh", "-c", "until pg_isready -h $(DB_HOST); do sleep 2; done"],
                    "env": [{"name": "DB_HOST", "value": "horizon-db.stellar.svc"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
            "containers": [
                {
                    "name": "horizon",
                    "image": "stellar/stellar-horizon:22.0.2",
                    "args": ["serve"],
                    "ports": [
                        {"name": "http", "containerPort": 8000, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 6060, "protocol": "TCP"},
                    ],
                    "env": [
                        {
                            "name": "DATABASE_URL",
                            "valueFrom": {
                                "secretKeyRef": {"name": "horizon-db", "key": "read-only-url"}
                            },
                        },
                        {
                            "name": "NETWORK_PASSPHRASE",
                            "value": "Public Global Stellar Network ; September 2015",
                        },
                        {
                            "name": "HISTORY_ARCHIVE_URLS",
                            "value": "https://history.stellar.org/prd/core-live/core_live_001",
                        },
                        {"name": "INGEST", "value": "false"},
                        {"name": "APPLY_MIGRATIONS", "value": "false"},
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "PER_HOUR_RATE_LIMIT", "value": "0"},
                        {"name": "ADMIN_PORT", "value": "6060"},
                        {
                            "name": "GOMAXPROCS",
                            "valueFrom": {
                                "resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}
                            },
                        },
                    ],
                    "resources": {
                        "requests": {"cpu": "2", "memory": "8Gi"},
                        "limits": {"cpu": "4", "memory": "8Gi"},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/health", "port": "http"},
                        "periodSeconds": 10,
                        "failureThreshold": 3,
                    },
                    "livenessProbe": {
                        "httpGet": {"path": "/health", "port": "http"},
                        "initialDelaySeconds": 30,
                        "periodSeconds": 20,
                    },
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/horizon", "readOnly": True},
                        {
                            "name": "kube-api-access-7x2lq",
                            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                            "readOnly": True,
                        },
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "horizon-read", "defaultMode": 420}},
                {
                    "name": "kube-api-access-7x2lq",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                },
            ],
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
        },
        "status": {},
    }


def operator_read_pods(count: int) -> list[dict[str, Any]]:
    """The operator's read-pool pods ``0 .. count - 1``: its StatefulSet's template with what the
    StatefulSet controller adds per pod (name, ordinal labels, owner)."""
    from tests.e2e.operator import READ_POOL, read_statefulset  # the captured template

    template = read_statefulset(count)["spec"]["template"]
    pods = []
    for ordinal in range(count):
        name = f"{READ_POOL}-{ordinal}"
        labels = {
            **template["metadata"]["labels"],
            "apps.kubernetes.io/pod-index": str(ordinal),
            "controller-revision-hash": f"{READ_POOL}-6d5f8b7c9",
            "statefulset.kubernetes.io/pod-name": name,
        }
        owner = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": READ_POOL,
            "uid": "5f0c6b7e-2a51-4c4b-9d0e-6f1f7d8f9a01",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        metadata = {"name": name, "namespace": NAMESPACE, "labels": labels}
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {**metadata, "ownerReferences": [owner]},
                "spec": copy.deepcopy(template["spec"]),
            }
        )
    return pods


def large_pod(target_bytes: int = 200_000) -> dict[str, Any]:
    """The read replica plus sidecars whose environment brings the pod to ``target_bytes``."""
    pod = read_pool_pod()
    rng = random.Random(7)
    sidecars: list[dict[str, Any]] = []
    size = len(json.dumps(pod))
    index = 0
    while size < target_bytes:
        if index % 250 == 0:
            sidecars.append(
                {
                    "name": f"sidecar-{len(sidecars)}",
                    "image": "registry.example.org/stellar/agent:1.4.2",
                    "env": [],
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                }
            )
        value = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789-", k=48))
        entry = {"name": f"AGENT_SETTING_{index:05d}", "value": value}
        sidecars[-1]["env"].append(entry)
        size += len(json.dumps(entry)) + 2
        index += 1
    pod["spec"]["containers"].extend(sidecars)
    return pod


def admission_review(pod: dict[str, Any], uid: str) -> dict[str, Any]:
    """The AdmissionReview the API server sends for the CREATE of ``pod``."""
    pod_kind = {"group": "", "version": "v1", "kind": "Pod"}
    pods = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": pod_kind,
            "resource": pods,
            "requestKind": pod_kind,
            "requestResource": pods,
            "name": "",
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
            },
            "object": pod,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def reviews_of(pods: list[dict[str, Any]], *, seed: int = 0) -> list[bytes]:
    """One encoded review per pod."""
    rng = random.Random(seed)
    return [
        json.dumps(admission_review(pod, str(uuid.UUID(int=rng.getrandbits(128))))).encode()
        for pod in pods
    ]


def review_bodies(pod: dict[str, Any], count: int, *, seed: int = 0) -> list[bytes]:
    """``count`` encoded reviews of ``pod``, as the pods of one ReplicaSet arrive: each with its
    own ``request.uid`` and its own service-account token volume name (the API server's
    ServiceAccount admission plugin names it ``kube-api-access-<5 random characters>``)."""
    rng = random.Random(seed)
    text = json.dumps(pod)
    bodies = []
    for _ in range(count):
        token = "".join(rng.choices(_TOKEN_CHARACTERS, k=5))
        copy_of_pod = json.loads(text.replace(TOKEN_VOLUME, f"kube-api-access-{token}"))
        uid = str(uuid.UUID(int=rng.getrandbits(128)))
        bodies.append(json.dumps(admission_review(copy_of_pod, uid)).encode())
    return bodies


TOKEN_VOLUME = "kube-api-access-7x2lq"
"""The token volume's name in ``read_pool_pod`` and ``large_pod``."""
_TOKEN_CHARACTERS = "bcdfghjklmnpqrstvwxz2456789"
OPERATOR_PODS = 512
"""Operator pods a benchmark sends: more ordinals than the webhook's memos keep, so each review
is decided as a new pod (a StatefulSet creates each ordinal once)."""
