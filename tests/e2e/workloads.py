"""A read-replica pod and container, for tests about something other than the read pool's shape.

The operator's exact read pool is ``tests/e2e/operator.py``.

kwok never starts their containers; the images and ports are there so that admission sees what
the operator would send.
"""

from __future__ import annotations

from typing import Any, Final

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
