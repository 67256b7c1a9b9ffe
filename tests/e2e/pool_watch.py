"""A read pool watched pod by pod while it is moved: readiness after every change the API server
reports, and every pod each replica has been.

``PoolWatch`` lists the pool once, then follows a watch from that list's resourceVersion, so it
sees every state the pods pass through (not just the ones a poll would happen to catch). After
each event it counts the Ready replicas (the pod's ``Ready`` condition, bound, not being deleted:
what a PodDisruptionBudget counts as healthy) and keeps the lowest count seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, Self

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import watch

_POLL_SECONDS: Final = 0.1


def ready(pod: k8s.V1Pod) -> bool:
    """Ready by its condition, bound to a node and not on its way out."""
    if pod.metadata.deletion_timestamp is not None or not pod.spec.node_name:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class PoolWatch:
    """The pods matching ``selector`` in ``namespace``, followed until the block ends.

    ``node_regions`` maps node names to regions, for ``regions()``; ``on_change`` runs after
    every event counted, so a caller watching several pools can total them at that moment.
    """

    def __init__(
        self,
        api: k8s.ApiClient,
        namespace: str,
        selector: str,
        node_regions: Mapping[str, str],
        *,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._core = k8s.CoreV1Api(api)
        self._namespace = namespace
        self._selector = selector
        self._node_regions = dict(node_regions)
        self.pods: dict[str, k8s.V1Pod] = {}
        """The live pods by name, as last reported."""
        self.uids: dict[str, list[str]] = {}
        """Every pod (by UID) each replica name has been, oldest first."""
        self.deleted_at: dict[str, float] = {}
        """UID → ``time.monotonic()`` when the pod was first seen being deleted."""
        self.lowest_ready: int | None = None
        self.events = 0
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    # --- what was seen ------------------------------------------------------------------------

    def ready_count(self) -> int:
        return sum(1 for pod in self.pods.values() if ready(pod))

    def regions(self) -> dict[str, str | None]:
        """Each live pod's region by its node (None while unbound)."""
        return {
            name: self._node_regions.get(pod.spec.node_name) if pod.spec.node_name else None
            for name, pod in self.pods.items()
        }

    def moves(self) -> dict[str, int]:
        """How many times each replica was replaced by a new pod."""
        return {name: len(uids) - 1 for name, uids in self.uids.items()}

    def check(self) -> None:
        """Raise what the background watch ran into, if anything."""
        if self._failure is not None:
            raise AssertionError(f"the pod watch failed: {self._failure!r}") from self._failure

    async def wait_until(
        self,
        what: str,
        done: Callable[[], bool],
        *,
        timeout: float,  # noqa: ASYNC109 - the pool's state at the deadline goes into the failure
        also: Callable[[], None] = lambda: None,
    ) -> float:
        """Wait until ``done()`` holds, calling ``also()`` on every poll (it may raise); the
        seconds it took."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not done():
            self.check()
            also()
            if loop.time() - start > timeout:
                raise AssertionError(
                    f"{what}: not reached within {timeout:.0f}s; pods: {self.describe()}"
                )
            await asyncio.sleep(_POLL_SECONDS)
        return loop.time() - start

    def describe(self) -> dict[str, Any]:
        return {
            name: {
                "uid": pod.metadata.uid,
                "node": pod.spec.node_name,
                "ready": ready(pod),
                "deleting": pod.metadata.deletion_timestamp is not None,
            }
            for name, pod in sorted(self.pods.items())
        }

    # --- following ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        listed = await self._core.list_namespaced_pod(
            self._namespace, label_selector=self._selector
        )
        for pod in listed.items:
            self._see("ADDED", pod, count=False)
        self.lowest_ready = self.ready_count()
        self._task = asyncio.create_task(
            self._follow(listed.metadata.resource_version), name="pool-watch"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self, resource_version: str) -> None:
        try:
            # No timeout_seconds: the client resumes from the last version whenever a stream ends.
            async with watch.Watch().stream(
                self._core.list_namespaced_pod,
                self._namespace,
                label_selector=self._selector,
                resource_version=resource_version,
            ) as stream:
                async for event in stream:
                    self._see(event["type"], event["object"])
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # kept for check(): a task has nobody else to tell
            self._failure = e

    def _see(self, kind: str, pod: k8s.V1Pod, *, count: bool = True) -> None:
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        self.events += 1
        name, uid = pod.metadata.name, pod.metadata.uid
        seen = self.uids.setdefault(name, [])
        if uid not in seen:
            seen.append(uid)
        if pod.metadata.deletion_timestamp is not None or kind == "DELETED":
            self.deleted_at.setdefault(uid, time.monotonic())
        # A StatefulSet creates a replica's next pod only once the last one is gone.
        if kind == "DELETED":
            if name in self.pods and self.pods[name].metadata.uid == uid:
                del self.pods[name]
        else:
            self.pods[name] = pod
        if count:
            ready_now = self.ready_count()
            lowest = self.lowest_ready
            self.lowest_ready = ready_now if lowest is None else min(lowest, ready_now)
            self._on_change()
