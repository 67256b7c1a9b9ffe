"""Pods the webhook restricted to a required region set that the scheduler cannot place.

A required set is sized to hold the pod's pool, but the webhook's view can lag the cluster (a node
drained, another workload scheduled first), and a pod outside any node's reach stays Pending. This
module notices it afterwards, from the pod watch (``Workloads.restricted``), never on the
admission path: a pod that carries ``stellar.org/carbon-required-regions``, is not bound, and has
had ``PodScheduled=False, reason=Unschedulable`` for longer than a grace period is *stranded*.
``StrandedPods.check`` keeps a gauge of the pods stranded now, counts each pod (by uid) once when
it first becomes stranded, and logs one warning for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge

from shared.cluster.workloads import RestrictedPod, Workloads
from shared.core.clock import Clock

logger = logging.getLogger(__name__)


def stranded(
    pods: Iterable[RestrictedPod],
    *,
    now: datetime,
    grace: timedelta,
    first_seen: Callable[[RestrictedPod], datetime],
) -> list[RestrictedPod]:
    """The pods unschedulable for longer than ``grace`` at ``now``. A condition without a
    transition time counts from ``first_seen(pod)``, when the watch first saw it so."""
    found = []
    for pod in pods:
        if not pod.unschedulable:
            continue
        since = pod.unschedulable_since or first_seen(pod)
        if now - since > grace:
            found.append(pod)
    return found


def check_interval(grace: timedelta) -> float:
    """Seconds between checks: a quarter of the grace period, between 0.5 s and 15 s."""
    return min(max(grace.total_seconds() / 4, 0.5), 15.0)


class StrandedPods:
    """Follows ``Workloads.restricted`` and reports the stranded pods (see the module docstring).

    ``clock`` is wall-clock time (the pods' conditions carry the API server's), not the carbon
    data's clock, which may be pinned."""

    def __init__(
        self,
        workloads: Callable[[], Workloads],
        *,
        grace: timedelta,
        clock: Clock,
        gauge: Gauge,
        counter: Counter,
    ) -> None:
        self._workloads = workloads
        self._grace = grace
        self._clock = clock
        self._gauge = gauge
        self._counter = counter
        self._reported: set[str] = set()
        self._first_seen: dict[str, datetime] = {}

    def check(self) -> list[RestrictedPod]:
        """Update the gauge, count and log newly stranded pods; returns those stranded now."""
        now = self._clock()
        restricted = self._workloads().restricted.values()
        present = {_identity(pod) for pod in restricted}
        # Both sets only hold pods the watch still keeps, so neither grows without bound.
        self._reported &= present
        self._first_seen = {k: v for k, v in self._first_seen.items() if k in present}
        for pod in restricted:
            if pod.unschedulable:
                self._first_seen.setdefault(_identity(pod), now)
        found = stranded(
            restricted,
            now=now,
            grace=self._grace,
            first_seen=lambda pod: self._first_seen[_identity(pod)],
        )
        self._gauge.set(len(found))
        for pod in found:
            identity = _identity(pod)
            if identity in self._reported:
                continue
            self._reported.add(identity)
            self._counter.inc()
            logger.warning(
                "pod %s/%s restricted to regions %s has been unschedulable for over %.0fs",
                pod.namespace,
                pod.name,
                ",".join(pod.required_regions),
                self._grace.total_seconds(),
            )
        return found

    async def run(self) -> None:
        """Check every ``check_interval(grace)`` seconds until cancelled."""
        interval = check_interval(self._grace)
        while True:
            try:
                self.check()
            except Exception:
                # Reporting must never stop: the next check may succeed.
                logger.exception("cannot check restricted pods")
            await asyncio.sleep(interval)


def _identity(pod: RestrictedPod) -> str:
    # A StatefulSet recreates a pod under the same name; the uid tells the two apart.
    return pod.uid or f"{pod.namespace}/{pod.name}"
