"""The cluster inventory kept current from the Kubernetes API.

``KubeInventory`` runs one ``Reflector`` for nodes and, when asked, one for Stellar pods. Objects
stay raw JSON and go straight through ``shared.cluster.topology`` (nodes) and
``shared.cluster.pods``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any

from kubernetes_asyncio.client import ApiClient, CoreV1Api

from shared.cluster.inventory import NodeInfo, PodInfo
from shared.cluster.kube.api import call_raw
from shared.cluster.kube.podwatch import PodWatch
from shared.cluster.kube.reflector import Reflector, ReflectorGroup, WatchSettings
from shared.cluster.pods import STELLAR_POD_SELECTORS, pod_from_manifest, pod_role
from shared.cluster.topology import node_from_manifest

logger = logging.getLogger(__name__)

OnChange = Callable[[], None]
"""Called (synchronously, on the event loop) after the inventory changed."""


def _metadata(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = raw.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _node_key(raw: Mapping[str, Any]) -> str | None:
    name = _metadata(raw).get("name")
    return name if isinstance(name, str) and name else None


def _stellar_pod(raw: Mapping[str, Any]) -> PodInfo | None:
    labels = _metadata(raw).get("labels")
    if not isinstance(labels, Mapping) or pod_role(labels) is None:
        return None
    return pod_from_manifest(raw)


class KubeInventory(ReflectorGroup):
    """Nodes (and optionally Stellar pods) of the cluster, kept current in the background.

    Implements ``shared.cluster.inventory.Inventory``. Reads are synchronous and return immutable
    snapshots. The ``ApiClient`` belongs to the caller, who closes it after ``stop()``.

    ``pod_namespace`` limits the pod watch to one namespace (all namespaces by default).
    ``pod_selectors`` are the label selectors the server narrows the pods by, any one matching
    (``shared.cluster.kube.podwatch``); none watches every pod. Of the pods sent, only Stellar pods
    (see ``shared.cluster.pods.pod_role``) are kept. ``on_change`` is called after every change
    that alters a node or pod the inventory keeps (status heartbeats do not).
    """

    _task_prefix = "inventory"

    def __init__(
        self,
        api: ApiClient,
        *,
        extra_region_key: str | None = None,
        watch_pods: bool = False,
        pod_namespace: str | None = None,
        pod_selectors: Sequence[str] = STELLAR_POD_SELECTORS,
        on_change: OnChange | None = None,
        settings: WatchSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        core = CoreV1Api(api)
        settings = settings or WatchSettings()
        rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._on_change = on_change

        def convert_node(raw: Mapping[str, Any]) -> NodeInfo:
            return node_from_manifest(raw, extra_region_key)

        self._nodes: Reflector[str, NodeInfo] = Reflector(
            "nodes",
            partial(call_raw, core.list_node),
            _node_key,
            convert_node,
            self._notify,
            settings,
            rng,
        )
        self._pods: PodWatch[PodInfo] | None = None
        if watch_pods:
            list_pods = (
                partial(call_raw, core.list_namespaced_pod, pod_namespace)
                if pod_namespace
                else partial(call_raw, core.list_pod_for_all_namespaces)
            )
            self._pods = PodWatch(
                list_pods, pod_selectors, _stellar_pod, self._notify, settings, rng
            )

    # --- Inventory ------------------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, NodeInfo]:
        return self._nodes.items

    @property
    def pods(self) -> Mapping[tuple[str, str], PodInfo]:
        return self._pods.items if self._pods is not None else MappingProxyType({})

    # --- lifecycle ------------------------------------------------------------------------------

    def _reflectors(self) -> list[Reflector[Any, Any]]:
        return [self._nodes] if self._pods is None else [self._nodes, *self._pods.reflectors]

    def _notify(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:
            # A broken listener must not stop the inventory from following the cluster.
            logger.exception("inventory change callback failed")
