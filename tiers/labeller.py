"""The tier component's Kubernetes writes: one label per node, one Event per change.

The label goes on with a strategic-merge patch that names only ``carbon.stellar.org/tier`` under
the field manager ``stellar-carbon-tiers``: no read-modify-write of the node, so no conflict with
the kubelet's status updates and no chance of dropping another controller's labels, and
``kubectl get node --show-managed-fields`` says who set it. Events follow the kubelet's
convention for nodes (namespace ``default``, the node's name as its UID), so ``kubectl describe
node`` lists them.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CoreV1Api

from shared.cluster.kube import KubeApiError, call_for_text
from shared.cluster.kube.api import status_message
from shared.core.clock import Clock
from shared.scoring.tiers import TIER_LABEL
from tiers.decide import LabelWrite

logger = logging.getLogger(__name__)

FIELD_MANAGER: Final = "stellar-carbon-tiers"
PATCH_TYPE: Final = "application/strategic-merge-patch+json"
EVENT_REASON: Final = "CarbonTierChanged"
EVENT_NAMESPACE: Final = "default"
"""Where the kubelet and ``kubectl describe node`` keep events about nodes."""


def label_patch(write: LabelWrite) -> dict[str, Any]:
    """The patch body: the tier label and nothing else."""
    return {"metadata": {"labels": {TIER_LABEL: write.value}}}


class NodeLabeller:
    """Writes tier labels on nodes and records an Event for each. The ``ApiClient`` is the
    caller's."""

    def __init__(self, api: ApiClient, *, clock: Clock, instance: str | None = None) -> None:
        self._core = CoreV1Api(api)
        self._clock = clock
        self._instance = instance or socket.gethostname()

    async def write(self, write: LabelWrite) -> None:
        """Set the node's tier label; ``KubeApiError`` when the API server refuses."""
        status, body = await call_for_text(
            self._core.patch_node,
            write.node,
            label_patch(write),
            field_manager=FIELD_MANAGER,
            _content_type=PATCH_TYPE,
        )
        if status >= 300:
            raise KubeApiError(status, status_message(body), action=f"label node {write.node}")

    async def record(self, write: LabelWrite) -> None:
        """Record the change as an Event on the node; ``KubeApiError`` when refused."""
        now = self._clock().isoformat().replace("+00:00", "Z")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{write.node}.carbon-tier-",
                "namespace": EVENT_NAMESPACE,
            },
            # The kubelet refers to a node with its name as UID; kubectl describe node matches it.
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Node",
                "name": write.node,
                "uid": write.node,
            },
            "reason": EVENT_REASON,
            "message": write.message(),
            "type": "Normal",
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        status, body = await call_for_text(
            self._core.create_namespaced_event, EVENT_NAMESPACE, event
        )
        if status >= 300:
            raise KubeApiError(
                status, status_message(body), action=f"record event on node {write.node}"
            )
