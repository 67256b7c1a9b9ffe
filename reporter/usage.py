"""Measured node CPU usage from the Kubernetes resource-metrics API (metrics.k8s.io).

Optional: when enabled, a background loop reads ``/apis/metrics.k8s.io/v1beta1/nodes`` (what
``kubectl top nodes`` shows, served by metrics-server) and the power model uses the measured
utilisation instead of CCF's 50 % default. When the API is missing or fails, the last readings are
dropped after a while and the default applies again; the reporter keeps serving either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from kubernetes_asyncio.client import ApiClient, CustomObjectsApi

from shared.cluster.quantities import parse_quantity_cpu
from shared.core.errors import truncate

logger = logging.getLogger(__name__)

_EMPTY: Mapping[str, int] = MappingProxyType({})


def usage_from_node_metrics(document: Mapping[str, Any]) -> dict[str, int]:
    """Node name → CPU usage in millicores from a ``NodeMetricsList``; unreadable items skipped."""
    usage: dict[str, int] = {}
    items = document.get("items")
    if not isinstance(items, list):
        return usage
    for item in items:
        if not isinstance(item, Mapping):
            continue
        metadata, values = item.get("metadata"), item.get("usage")
        if not isinstance(metadata, Mapping) or not isinstance(values, Mapping):
            continue
        name, cpu = metadata.get("name"), values.get("cpu")
        if not isinstance(name, str) or not isinstance(cpu, str | int | float):
            continue
        try:
            usage[name] = parse_quantity_cpu(cpu)
        except ValueError:
            logger.debug("node metrics for %s: unreadable cpu %r", name, cpu)
    return usage


class NodeMetricsPoller:
    """Keeps ``usage_millis`` current by polling metrics.k8s.io every ``interval`` seconds.

    Implements ``reporter.views.NodeUsage``; the mapping is replaced (never mutated) on change.
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        interval: float = 60.0,
        max_age: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._objects = CustomObjectsApi(api)
        self._interval = interval
        self._max_age = max_age if max_age is not None else 3 * interval
        self._monotonic = monotonic
        self._usage: Mapping[str, int] = _EMPTY
        self._read_at: float | None = None
        self.last_error: str | None = None

    @property
    def usage_millis(self) -> Mapping[str, int]:
        # Old readings would describe a different load; past max_age the 50 % default is fairer.
        if self._read_at is not None and self._monotonic() - self._read_at > self._max_age:
            self._usage, self._read_at = _EMPTY, None
        return self._usage

    async def poll_once(self) -> None:
        """Read node metrics once; a failure keeps the previous readings (until they expire)."""
        try:
            document = await self._objects.list_cluster_custom_object(
                "metrics.k8s.io", "v1beta1", "nodes"
            )
        except Exception as e:  # missing metrics-server, RBAC, network: all mean "not measured"
            self.last_error = f"{type(e).__name__}: {truncate(str(e))}"
            logger.warning("reading node metrics failed: %s", self.last_error)
            return
        usage = usage_from_node_metrics(document if isinstance(document, Mapping) else {})
        if usage != self._usage:
            self._usage = MappingProxyType(usage)
        self._read_at = self._monotonic()
        self.last_error = None

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self._interval)
