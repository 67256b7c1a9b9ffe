"""One active controller among its replicas: a ``coordination.k8s.io/v1`` Lease on Karmada.

A replica leads while it holds the Lease: it takes a Lease nobody holds or whose holder has not
renewed it within ``leaseDurationSeconds``, and renews its own every third of that. Every write is
a PUT carrying the ``resourceVersion`` it read (a POST for a new Lease), so when two replicas try
at once the API server lets one through and answers the other 409. A leader that cannot renew
before its own duration runs out steps down by itself, before the other could have taken over, so
two replicas never both believe they lead while the API server works.

kubernetes_asyncio ships a leader-election helper, but its Lease lock catches only
``ApiException``: an unreachable API server (an ``aiohttp`` error) escapes its renew loop. Here
any failure counts as "not renewed", and the loop goes on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, CoordinationV1Api

from shared.cluster.kube import KubeApiError, call_for_text
from shared.cluster.kube.api import status_message
from shared.core.clock import Clock

logger = logging.getLogger(__name__)

_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _micro_time(at: datetime) -> str:
    """A ``MicroTime`` as Kubernetes writes it."""
    return at.strftime(_MICRO)


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class LeaderLease:
    """Acquires and renews one Lease; ``leading`` says whether this replica may write."""

    def __init__(
        self,
        api: ApiClient,
        *,
        name: str,
        namespace: str,
        duration: float,
        clock: Clock,
        identity: str | None = None,
    ) -> None:
        self._coordination = CoordinationV1Api(api)
        self.name = name
        self.namespace = namespace
        self.duration = duration
        self._clock = clock
        self.identity = identity or socket.gethostname()
        self._renewed_at: datetime | None = None
        self.changed = asyncio.Event()
        """Set whenever leadership is gained or lost."""

    @property
    def leading(self) -> bool:
        """Held and renewed within two thirds of the lease duration (by this replica's clock):
        one missed renewal keeps the lead, a second gives it up before the Lease expires."""
        if self._renewed_at is None:
            return False
        return self._clock() - self._renewed_at < timedelta(seconds=self.duration * 2 / 3)

    async def run(self) -> None:
        """Try to acquire or renew every third of the duration, until cancelled."""
        while True:
            await self.try_once()
            await asyncio.sleep(self.duration / 3)

    async def try_once(self) -> bool:
        """One attempt to acquire or renew; whether this replica leads afterwards."""
        was = self.leading
        try:
            held = await self._acquire_or_renew()
        except (KubeApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            logger.warning("lease %s/%s not renewed: %s", self.namespace, self.name, e)
            held = False
        if held:
            self._renewed_at = self._clock()
        now = self.leading
        if now != was:
            logger.info(
                "%s %s leadership (lease %s/%s)",
                self.identity,
                "took" if now else "lost",
                self.namespace,
                self.name,
            )
            self.changed.set()
        return now

    async def release(self) -> None:
        """Give the Lease up on shutdown so the standby takes over at once.

        Decided by the Lease itself, not by this replica's own view: a leader whose last renewal
        came late (a busy node) still holds the Lease and must still hand it over. A write that
        races another one (409) is retried on a fresh read."""
        self._renewed_at = None
        try:
            for _ in range(3):
                status, text = await call_for_text(
                    self._coordination.read_namespaced_lease, self.name, self.namespace
                )
                if status != 200:
                    return
                lease = json.loads(text)
                spec = lease.setdefault("spec", {})
                if spec.get("holderIdentity") != self.identity:
                    return
                spec["holderIdentity"] = None
                status, _ = await call_for_text(
                    self._coordination.replace_namespaced_lease, self.name, self.namespace, lease
                )
                if status != 409:
                    return
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            logger.info("lease not released (the standby takes it when it expires): %s", e)

    async def _acquire_or_renew(self) -> bool:
        status, text = await call_for_text(
            self._coordination.read_namespaced_lease, self.name, self.namespace
        )
        now = self._clock()
        if status == 404:
            return await self._write(None, now, transitions=0)
        if status != 200:
            raise KubeApiError(status, status_message(text), action="read lease")
        lease: dict[str, Any] = json.loads(text)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds") or self.duration
        expired = renewed is None or now - renewed >= timedelta(seconds=float(duration))
        if holder and holder != self.identity and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        return await self._write(lease, now, transitions=transitions)

    async def _write(
        self, lease: dict[str, Any] | None, now: datetime, *, transitions: int
    ) -> bool:
        spec = dict((lease or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = _micro_time(now)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=max(1, round(self.duration)),
            renewTime=_micro_time(now),
            leaseTransitions=transitions,
        )
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            status, text = await call_for_text(
                self._coordination.create_namespaced_lease, self.namespace, body
            )
        else:
            body = {**lease, "spec": spec}
            status, text = await call_for_text(
                self._coordination.replace_namespaced_lease, self.name, self.namespace, body
            )
        if status == 409:
            return False  # another replica wrote first
        if status >= 300:
            raise KubeApiError(status, status_message(text), action="write lease")
        return True
