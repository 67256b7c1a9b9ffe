"""StatefulSets, namespaces and bound pods kept current from the Kubernetes API.

``KubeWorkloads`` runs one ``Reflector`` per resource and hands out a ``Workloads`` snapshot,
rebuilt at most once per change, so the admission path reads it synchronously and never calls
the API server. Pods are watched through label selectors (``shared.cluster.kube.podwatch``):
by default only Stellar's, so the free room of a node counts only their requests (see
``KubeWorkloads``). The pod watch also keeps the unbound pods the webhook restricted to a required
region set (``RestrictedPod``), which the snapshot holds apart from the bound ones.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any

from kubernetes_asyncio.client import ApiClient, AppsV1Api, CoreV1Api

from shared.cluster.kube.api import call_raw
from shared.cluster.kube.podwatch import PodWatch, namespaced_key
from shared.cluster.kube.reflector import Reflector, ReflectorGroup, WatchSettings
from shared.cluster.pods import STELLAR_POD_SELECTORS
from shared.cluster.workloads import (
    EMPTY,
    BoundPod,
    NamespaceInfo,
    RestrictedPod,
    StatefulSetInfo,
    WatchStats,
    Workloads,
    namespace_from_manifest,
    statefulset_from_manifest,
    watched_pod_from_manifest,
)

logger = logging.getLogger(__name__)


def _metadata(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = raw.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _name_key(raw: Mapping[str, Any]) -> str | None:
    name = _metadata(raw).get("name")
    return name if isinstance(name, str) and name else None


class KubeWorkloads(ReflectorGroup):
    """Every StatefulSet and namespace of the cluster and the pods ``pod_selectors`` match (any
    one of them; none: every pod), kept current in the background: the bound ones, and the
    unbound ones the webhook restricted to a required region set.

    The free room of a node is its allocatable less the requests of the watched pods bound to
    it. With the default selectors (``shared.cluster.pods.STELLAR_POD_SELECTORS``) that leaves out
    whatever else runs on the node, so room is overstated where Stellar shares nodes; watching
    every pod counts it all, at the cost of following every pod of the cluster. The
    ``ApiClient`` belongs to the caller, who closes it after ``stop()``.
    """

    _task_prefix = "workloads"

    def __init__(
        self,
        api: ApiClient,
        *,
        pod_selectors: Sequence[str] = STELLAR_POD_SELECTORS,
        settings: WatchSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        core, apps = CoreV1Api(api), AppsV1Api(api)
        settings = settings or WatchSettings()
        rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._statefulsets: Reflector[tuple[str, str], StatefulSetInfo] = Reflector(
            "statefulsets",
            partial(call_raw, apps.list_stateful_set_for_all_namespaces),
            namespaced_key,
            statefulset_from_manifest,
            _ignore,
            settings,
            rng,
        )
        self._namespaces: Reflector[str, NamespaceInfo] = Reflector(
            "namespaces",
            partial(call_raw, core.list_namespace),
            _name_key,
            namespace_from_manifest,
            _ignore,
            settings,
            rng,
        )
        self._pods: PodWatch[BoundPod | RestrictedPod] = PodWatch(
            partial(call_raw, core.list_pod_for_all_namespaces),
            pod_selectors,
            watched_pod_from_manifest,
            _ignore,
            settings,
            rng,
        )
        self._built: tuple[tuple[object, ...], Workloads] | None = None

    @property
    def state(self) -> Workloads:
        """The current snapshot; the same object until something changes."""
        statefulsets, namespaces, pods = (
            self._statefulsets.items,
            self._namespaces.items,
            self._pods.items,
        )
        key = (statefulsets, namespaces, pods, self.synced)
        built = self._built
        if built is None or any(a is not b for a, b in zip(built[0], key, strict=True)):
            bound: dict[tuple[str, str], BoundPod] = {}
            restricted: dict[tuple[str, str], RestrictedPod] = {}
            for pod_key, pod in pods.items():
                if isinstance(pod, BoundPod):
                    bound[pod_key] = pod
                else:
                    restricted[pod_key] = pod
            # Pods the webhook just restricted change the pod watch without binding anything:
            # the bound pods and their indexes then carry over.
            state = (built[1] if built is not None else EMPTY).updated(
                statefulsets,
                namespaces,
                MappingProxyType(bound),
                synced=key[3],
                restricted=MappingProxyType(restricted),
            )
            built = self._built = (key, state)
        return built[1]

    def stats(self) -> tuple[WatchStats, ...]:
        """Size, sync and last event of each watch, for readiness and metrics."""
        return tuple(
            WatchStats(r.kind, len(r.items), r.synced.is_set(), r.heard_at)
            for r in self._reflectors()
        )

    def _reflectors(self) -> list[Reflector[Any, Any]]:
        return [self._statefulsets, self._namespaces, *self._pods.reflectors]


def _ignore() -> None:
    # Readers compare snapshots by identity; nothing needs telling about a change.
    pass
