"""The operator's read pool propagated by Karmada: the user's policy, and what Karmada made of it.

``read_pool_policy`` is the carbon-aware PropagationPolicy a user writes for the read-pool
StatefulSet (``tests/e2e/operator.py``), applied with ``apply_as_user`` as ``kubectl apply
--server-side`` does (``propagate_read_pool`` creates both); ``scheduled`` reads the
scheduler's division from the ResourceBinding, ``running`` the ready replicas of each member's
StatefulSet, and ``FleetPool`` follows the pool's pods in every member and keeps the lowest
total of ready replicas any event left; ``member_clients`` opens a client per member.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Final, Self

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from tests.e2e.karmada import Karmada
from tests.e2e.operator import READ_POOL, create_operator_read_pool
from tests.e2e.pool_watch import PoolWatch

POLICIES: Final = ("policy.karmada.io", "v1alpha1")
USER: Final = "kubectl"
"""The field manager of the user's ``kubectl apply --server-side``."""
BINDING: Final = f"{READ_POOL}-statefulset"
"""The ResourceBinding Karmada makes for the read-pool StatefulSet."""


def read_pool_policy(
    *, clusters: tuple[str, ...] = (), labels: Mapping[str, str] | None = None, priority: int = 0
) -> dict[str, Any]:
    """The read pool's policy as its user writes it: opted in, divided by weight, no list;
    ``clusters`` restricts it by ``clusterAffinity.clusterNames``."""
    placement: dict[str, Any] = {
        "replicaScheduling": {
            "replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted",
        }
    }
    if clusters:
        placement["clusterAffinity"] = {"clusterNames": list(clusters)}
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {
            "name": READ_POOL,
            "annotations": {"stellar.org/carbon-aware": "enabled"},
            "labels": dict(labels or {}),
        },
        "spec": {
            "resourceSelectors": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": READ_POOL}
            ],
            "priority": priority,
            "placement": placement,
        },
    }


@contextlib.asynccontextmanager
async def member_clients(karmada: Karmada) -> AsyncIterator[dict[str, k8s.ApiClient]]:
    """A kubernetes-asyncio client as admin of each member cluster, by name; closed afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(
                k8s.ApiClient(member.control_plane.configuration())
            )
            for name, member in karmada.members.items()
        }


async def propagate_read_pool(
    api: k8s.ApiClient, namespace: str, replicas: int, policy: Mapping[str, Any]
) -> None:
    """The operator's read-pool StatefulSet (``podAntiAffinity: Soft``: the members' two kwok
    nodes could not hold a greener member's share under the required rule) created on the
    Karmada API server, and its user's ``policy`` applied."""
    await create_operator_read_pool(api, namespace, replicas, hpa=False, soft=True)
    await apply_as_user(api, namespace, policy)


async def apply_as_user(api: k8s.ApiClient, namespace: str, policy: Mapping[str, Any]) -> None:
    """``kubectl apply --server-side`` of ``policy`` (not forced)."""
    # The generated client takes the content type among its loose keyword arguments.
    apply: dict[str, Any] = {"_content_type": "application/apply-patch+yaml"}
    await k8s.CustomObjectsApi(api).patch_namespaced_custom_object(
        *POLICIES,
        namespace,
        "propagationpolicies",
        policy["metadata"]["name"],
        dict(policy),
        field_manager=USER,
        **apply,
    )


async def read_policy(api: k8s.ApiClient, namespace: str) -> dict[str, Any]:
    policy: dict[str, Any] = await k8s.CustomObjectsApi(api).get_namespaced_custom_object(
        *POLICIES, namespace, "propagationpolicies", READ_POOL
    )
    return policy


def weights_of(placement: Mapping[str, Any]) -> dict[str, int]:
    """A placement's staticWeightList, cluster → weight."""
    scheduling = placement.get("replicaScheduling") or {}
    preference = scheduling.get("weightPreference") or {}
    out: dict[str, int] = {}
    for entry in preference.get("staticWeightList") or []:
        for name in entry["targetCluster"]["clusterNames"]:
            out[name] = entry["weight"]
    return out


async def read_binding(api: k8s.ApiClient, namespace: str) -> dict[str, Any] | None:
    try:
        binding: dict[str, Any] = await k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "work.karmada.io", "v1alpha2", namespace, "resourcebindings", BINDING
        )
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return binding


def division_of(binding: Mapping[str, Any] | None) -> dict[str, int]:
    """Replicas per member in a ResourceBinding (members with none left out)."""
    clusters = (binding or {}).get("spec", {}).get("clusters") or []
    return {c["name"]: c["replicas"] for c in clusters if c.get("replicas")}


async def scheduled(api: k8s.ApiClient, namespace: str) -> dict[str, int]:
    """The scheduler's division of the read pool, as its ResourceBinding holds it now."""
    return division_of(await read_binding(api, namespace))


async def running(members: Mapping[str, k8s.ApiClient], namespace: str) -> dict[str, int]:
    """Ready replicas of each member's own StatefulSet (members without one, or at 0, left out)."""
    found = {}
    for name, api in members.items():
        try:
            statefulset = await k8s.AppsV1Api(api).read_namespaced_stateful_set(
                READ_POOL, namespace
            )
        except ApiException as e:
            if e.status == 404:
                continue
            raise
        if statefulset.spec.replicas:
            found[name] = statefulset.status.ready_replicas or 0
    return found


class FleetPool:
    """A read pool's pods in every member cluster, followed by one watch per member; after every
    event any of them reports, the ready replicas across the members are totalled and the lowest
    total kept (once every member has been listed)."""

    def __init__(self, members: Mapping[str, k8s.ApiClient], namespace: str, selector: str) -> None:
        self.watches = {
            name: PoolWatch(api, namespace, selector, {}, on_change=self._observe)
            for name, api in members.items()
        }
        self.lowest_total: int | None = None
        self.lowest_at: dict[str, int] = {}
        """Ready replicas per member at the moment of the lowest total."""
        self.observations = 0
        self._listed = False
        self._stack = contextlib.AsyncExitStack()

    def ready(self) -> dict[str, int]:
        return {name: watch.ready_count() for name, watch in self.watches.items()}

    def pods(self) -> dict[str, int]:
        """Live pods per member, ready or not."""
        return {name: len(watch.pods) for name, watch in self.watches.items()}

    def check(self) -> None:
        for watch in self.watches.values():
            watch.check()

    def _observe(self) -> None:
        if not self._listed:
            return
        self.observations += 1
        ready = self.ready()
        total = sum(ready.values())
        if self.lowest_total is None or total < self.lowest_total:
            self.lowest_total, self.lowest_at = total, ready

    async def __aenter__(self) -> Self:
        for watch in self.watches.values():
            await self._stack.enter_async_context(watch)
        self._listed = True
        self._observe()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stack.aclose()
