"""The Karmada API server: member clusters, policies and bindings kept current, weights applied.

``KarmadaWatches`` runs one list + watch loop (``shared.cluster.kube.reflector``: backoff with
jitter on any failure, relist on 410, last good state kept while the API server is unreachable)
per resource: ``clusters`` (cluster.karmada.io/v1alpha1), ``propagationpolicies`` and
``clusterpropagationpolicies`` (policy.karmada.io/v1alpha1, narrowed by the configured label
selector; only opted-in ones are kept), and ``resourcebindings`` and ``clusterresourcebindings``
(work.karmada.io/v1alpha2) for the replicas each policy divides.

``KarmadaWriter`` applies a policy's weights with server-side apply under the field manager
``stellar-carbon-karmada``, never forced: a 409 because the policy changed since it was read
(the body carries its ``resourceVersion``) is answered by re-reading it (``Stale``); a 409 because
another manager owns the weights is reported (``Conflict``), never overridden. Events go to the
policy's namespace (``lease_namespace`` for ClusterPropagationPolicies).
"""

from __future__ import annotations

import json
import logging
import random
import socket
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi

from multicluster.members import MemberCluster, cluster_from_manifest
from multicluster.placement import PolicyKind
from multicluster.policies import (
    PolicyRef,
    WatchedPolicy,
    binding_policy,
    binding_replicas,
    policy_from_manifest,
)
from shared.cluster.kube import KubeApiError, call_for_text, call_raw
from shared.cluster.kube.api import status_message
from shared.cluster.kube.reflector import Reflector, ReflectorGroup, WatchSettings
from shared.core.clock import Clock, rfc3339

logger = logging.getLogger(__name__)

FIELD_MANAGER: Final = "stellar-carbon-karmada"
APPLY_PATCH: Final = "application/apply-patch+yaml"
POLICY_GROUP, POLICY_VERSION = "policy.karmada.io", "v1alpha1"
CLUSTER_GROUP, CLUSTER_VERSION = "cluster.karmada.io", "v1alpha1"
WORK_GROUP, WORK_VERSION = "work.karmada.io", "v1alpha2"


class Stale(KubeApiError):
    """The policy changed since it was read: re-read it and decide again."""


class Conflict(KubeApiError):
    """Another field manager owns what the controller would write; reported, never forced."""


def _metadata(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = raw.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _key(raw: Mapping[str, Any]) -> tuple[str, str] | None:
    metadata = _metadata(raw)
    name, namespace = metadata.get("name"), metadata.get("namespace") or ""
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return namespace, name


def _binding(cluster_scoped: bool) -> Callable[[Mapping[str, Any]], tuple[PolicyRef, int] | None]:
    def convert(raw: Mapping[str, Any]) -> tuple[PolicyRef, int] | None:
        ref = binding_policy(raw, cluster_scoped)
        return None if ref is None else (ref, binding_replicas(raw))

    return convert


class KarmadaWatches(ReflectorGroup):
    """Clusters, opted-in policies and bindings of the Karmada control plane, kept current.

    ``on_change`` runs after any change (a policy edited, a cluster joined) so a cycle can follow
    at once. The ``ApiClient`` belongs to the caller.
    """

    _task_prefix = "karmada"

    def __init__(
        self,
        api: ApiClient,
        *,
        label_selector: str = "",
        on_change: Callable[[], None] = lambda: None,
        settings: WatchSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        custom = CustomObjectsApi(api)
        settings = settings or WatchSettings()
        rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)

        def lister(group: str, version: str, plural: str, **extra: str) -> Any:
            return partial(
                call_raw, custom.list_cluster_custom_object, group, version, plural, **extra
            )

        def reflector(kind: str, call: Any, convert: Callable[[Mapping[str, Any]], Any]) -> Any:
            return Reflector(kind, call, _key, convert, on_change, settings, rng)

        selector = {"label_selector": label_selector} if label_selector else {}
        self.clusters: Reflector[tuple[str, str], MemberCluster] = reflector(
            "clusters", lister(CLUSTER_GROUP, CLUSTER_VERSION, "clusters"), cluster_from_manifest
        )
        self.policies: Reflector[tuple[str, str], WatchedPolicy] = reflector(
            "propagationpolicies",
            lister(POLICY_GROUP, POLICY_VERSION, "propagationpolicies", **selector),
            partial(policy_from_manifest, kind=PolicyKind.PROPAGATION, manager=FIELD_MANAGER),
        )
        self.cluster_policies: Reflector[tuple[str, str], WatchedPolicy] = reflector(
            "clusterpropagationpolicies",
            lister(POLICY_GROUP, POLICY_VERSION, "clusterpropagationpolicies", **selector),
            partial(
                policy_from_manifest, kind=PolicyKind.CLUSTER_PROPAGATION, manager=FIELD_MANAGER
            ),
        )
        self.bindings: Reflector[tuple[str, str], tuple[PolicyRef, int]] = reflector(
            "resourcebindings",
            lister(WORK_GROUP, WORK_VERSION, "resourcebindings"),
            _binding(cluster_scoped=False),
        )
        self.cluster_bindings: Reflector[tuple[str, str], tuple[PolicyRef, int]] = reflector(
            "clusterresourcebindings",
            lister(WORK_GROUP, WORK_VERSION, "clusterresourcebindings"),
            _binding(cluster_scoped=True),
        )

    def _reflectors(self) -> tuple[Reflector[Any, Any], ...]:
        return (
            self.clusters,
            self.policies,
            self.cluster_policies,
            self.bindings,
            self.cluster_bindings,
        )

    def members(self) -> dict[str, MemberCluster]:
        return {cluster.name: cluster for cluster in self.clusters.items.values()}

    def watched_policies(self) -> dict[PolicyRef, WatchedPolicy]:
        found = [*self.policies.items.values(), *self.cluster_policies.items.values()]
        return {policy.ref: policy for policy in found}

    def workloads(self) -> dict[PolicyRef, list[int]]:
        """Policy → the replicas of each workload it placed (bindings without replicas left out)."""
        out: dict[PolicyRef, list[int]] = {}
        for ref, replicas in [*self.bindings.items.values(), *self.cluster_bindings.items.values()]:
            if replicas > 0:
                out.setdefault(ref, []).append(replicas)
        return out


class KarmadaWriter:
    """Applies policy bodies, re-reads policies, records events; the caller owns the client."""

    def __init__(
        self,
        api: ApiClient,
        *,
        clock: Clock,
        event_namespace: str,
        instance: str | None = None,
    ) -> None:
        self._custom = CustomObjectsApi(api)
        self._core = CoreV1Api(api)
        self._clock = clock
        self._event_namespace = event_namespace
        self._instance = instance or socket.gethostname()

    async def apply(self, ref: PolicyRef, body: Mapping[str, Any]) -> None:
        """Server-side apply ``body``; ``Stale``, ``Conflict`` or ``KubeApiError`` when refused."""
        kwargs: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "force": False,
            "_content_type": APPLY_PATCH,
        }
        if ref.namespace:
            call = partial(
                self._custom.patch_namespaced_custom_object,
                POLICY_GROUP,
                POLICY_VERSION,
                ref.namespace,
                ref.kind.plural,
                ref.name,
            )
        else:
            call = partial(
                self._custom.patch_cluster_custom_object,
                POLICY_GROUP,
                POLICY_VERSION,
                ref.kind.plural,
                ref.name,
            )
        status, text = await call_for_text(call, dict(body), **kwargs)
        if status < 300:
            return
        action = f"apply weights to {ref}"
        if status == 409:
            kind = Conflict if _field_conflict(text) else Stale
            raise kind(status, status_message(text), action=action)
        raise KubeApiError(status, status_message(text), action=action)

    async def read(self, ref: PolicyRef) -> WatchedPolicy | None:
        """The policy as the API server holds it now; None when it is gone or has opted out."""
        if ref.namespace:
            call = partial(
                self._custom.get_namespaced_custom_object,
                POLICY_GROUP,
                POLICY_VERSION,
                ref.namespace,
                ref.kind.plural,
                ref.name,
            )
        else:
            call = partial(
                self._custom.get_cluster_custom_object,
                POLICY_GROUP,
                POLICY_VERSION,
                ref.kind.plural,
                ref.name,
            )
        status, text = await call_for_text(call)
        if status == 404:
            return None
        if status >= 300:
            raise KubeApiError(status, status_message(text), action=f"read {ref}")
        return policy_from_manifest(json.loads(text), ref.kind, manager=FIELD_MANAGER)

    async def record(
        self, ref: PolicyRef, reason: str, message: str, *, warning: bool = False
    ) -> None:
        """An Event on the policy (``kubectl describe`` lists it); ``KubeApiError`` when refused."""
        namespace = ref.namespace or self._event_namespace
        now = rfc3339(self._clock())
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.carbon-", "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{POLICY_GROUP}/{POLICY_VERSION}",
                "kind": ref.kind.value,
                "name": ref.name,
                **({"namespace": ref.namespace} if ref.namespace else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        status, text = await call_for_text(self._core.create_namespaced_event, namespace, event)
        if status >= 300:
            raise KubeApiError(status, status_message(text), action=f"record event on {ref}")


def _field_conflict(text: str) -> bool:
    """Whether a 409 names field manager conflicts (server-side apply), not a stale version."""
    try:
        status = json.loads(text)
    except ValueError:
        return False
    details = status.get("details") if isinstance(status, Mapping) else None
    causes = details.get("causes") if isinstance(details, Mapping) else None
    return isinstance(causes, list) and any(
        isinstance(c, Mapping) and c.get("type") == "FieldManagerConflict" for c in causes
    )
