"""Cluster inventory values: the nodes (and Stellar pods) the services reason about.

``shared.cluster.kube`` fills an inventory from the Kubernetes API (list + watch);
``shared.cluster.demo`` from a static file. Both expose the same synchronous read interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.core.models import Cloud


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    effect: str  # NoSchedule | PreferNoSchedule | NoExecute
    value: str | None = None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node as far as placement and footprint care."""

    name: str
    labels: Mapping[str, str]
    region: str | None
    """Region label value, None when the node carries none of the configured keys."""
    region_label: str | None
    """Which label key the region came from (``topology.kubernetes.io/region``, …)."""
    cloud: Cloud | None
    ready: bool = True
    unschedulable: bool = False
    taints: tuple[Taint, ...] = ()
    cpu_millis: int = 0
    """Allocatable CPU in millicores."""
    memory_bytes: int = 0
    """Allocatable memory in bytes."""
    instance_type: str | None = None
    tier_set_at: datetime | None = None
    """When the ``carbon.stellar.org/tier`` label was last written, as the API server records it
    in ``managedFields``; None without the label or the record (an inventory file)."""

    @property
    def vcpus(self) -> float:
        return self.cpu_millis / 1000

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.unschedulable


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A Stellar pod (validator, horizon, soroban-rpc, read-replica) as the reporter sees it."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    node_name: str | None = None
    phase: str = "Pending"
    cpu_request_millis: int = 0


class Inventory(Protocol):
    """Synchronous view of the cluster, kept current in the background."""

    @property
    def nodes(self) -> Mapping[str, NodeInfo]: ...

    @property
    def pods(self) -> Mapping[tuple[str, str], PodInfo]: ...

    @property
    def synced(self) -> bool:
        """True once the first full list has been received."""
        ...


class RunningInventory(Inventory, Protocol):
    """An inventory with a lifecycle: the Kubernetes watch, or a static file (no-ops)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def wait_synced(self, timeout: float) -> bool: ...  # noqa: ASYNC109
