"""The controller's cycle: decide each opted-in policy's weights, apply (or propose) them.

Every ``interval`` seconds, or at once when a watched object changes, from memory only: the
watched clusters, policies and bindings and the background carbon snapshot. Only the replica
holding the Lease writes; a standby decides nothing. What is reported once per policy version
(an unreadable placement, a policy static weights do not decide, a cluster without a region) is
not repeated every cycle.

Failures: carbon data that is not live freezes the weights (``decide``); a 409 because the policy
changed is answered by re-reading it and deciding again (a few times); a 409 from another field
manager is reported, never forced; any other refusal or an unreachable API server is logged and
counted, and the next cycle tries again, since it compares what the policy holds with the target.
Stopping the controller changes nothing: the weights last written stay, and Karmada keeps the
workloads where they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from multicluster.decide import ClusterCarbon, Decision, Rules, Verdict, decide
from multicluster.karmada import Conflict, KarmadaWatches, KarmadaWriter, Stale
from multicluster.lease import LeaderLease
from multicluster.members import ClusterRegions, MemberCluster, Resolve, map_regions
from multicluster.metrics import KarmadaMetrics
from multicluster.placement import eligible_clusters, limit_groups
from multicluster.policies import Annotations, PolicyRef, WatchedPolicy, apply_body, weights_text
from multicluster.report import PolicyView
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.kube import KubeApiError
from shared.core.clock import Clock
from shared.core.models import Freshness
from shared.scoring.ranking import rank

logger = logging.getLogger(__name__)

SnapshotSource = Callable[[], CarbonSnapshot]
_ATTEMPTS = 3
_ERRORS = (KubeApiError, aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one policy in one cycle."""

    ref: PolicyRef
    verdict: str
    reason: str
    written: str | None = None
    """``applied``, ``proposed``, ``conflict``, ``stale`` or ``failed`` when a write was tried."""


class WeightLoop:
    """Decides and writes (with ``apply``) or proposes (dry-run) weights for opted-in policies."""

    def __init__(
        self,
        *,
        watches: KarmadaWatches,
        writer: KarmadaWriter,
        lease: LeaderLease,
        resolve: Resolve,
        track: Callable[[frozenset[str]], None],
        snapshot_source: SnapshotSource,
        clock: Clock,
        rules: Rules,
        metrics: KarmadaMetrics,
        apply: bool,
        horizon_hours: int,
        interval: float,
    ) -> None:
        self._watches = watches
        self._writer = writer
        self._lease = lease
        self._resolve = resolve
        self._track = track
        self._snapshot_source = snapshot_source
        self._clock = clock
        self._rules = rules
        self._metrics = metrics
        self._apply = apply
        self._horizon_hours = horizon_hours
        self._interval = interval
        self._reported: set[tuple[PolicyRef, str, str]] = set()
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Cycle every ``interval`` seconds (sooner when woken) until cancelled."""
        while True:
            self.wake.clear()
            try:
                await self.cycle()
            except Exception:
                logger.exception("karmada cycle failed; next one in %.0fs", self._interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._interval)

    async def cycle(self) -> list[Outcome]:
        self._metrics.leader.set(1 if self._lease.leading else 0)
        if not self._watches.synced:
            logger.info("karmada cycle skipped: not synced with the Karmada API server yet")
            return []
        members = self._watches.members()
        regions = map_regions(members.values(), self._resolve)
        self._track(regions.region_names())
        if not self._lease.leading:
            return []
        workloads = self._watches.workloads()
        outcomes: list[Outcome] = []
        views: list[PolicyView] = []
        for ref, policy in sorted(self._watches.watched_policies().items()):
            outcome, view = await self._one(policy, members, regions, workloads.get(ref, []))
            outcomes.append(outcome)
            self._metrics.decisions.labels(outcome.verdict).inc()
            if outcome.written:
                self._metrics.writes.labels(outcome.written).inc()
            if view is not None:
                views.append(view)
        self._metrics.show(views)
        return outcomes

    async def _one(
        self,
        policy: WatchedPolicy,
        members: Mapping[str, MemberCluster],
        regions: ClusterRegions,
        workloads: list[int],
    ) -> tuple[Outcome, PolicyView | None]:
        for attempt in range(_ATTEMPTS):
            if policy.placement is None:
                reason = f"cannot read the placement: {policy.problem}"
                await self._report_once(policy, "CarbonPolicyUnreadable", reason, warning=True)
                return Outcome(policy.ref, "unreadable", reason), None
            if policy.placement.weighable is not None:
                reason = f"weights not changed: {policy.placement.weighable}"
                await self._report_once(policy, "CarbonWeightsNotApplicable", reason)
                return Outcome(policy.ref, "not-weighable", reason), None
            decision, view, annotations = self._decide(policy, members, regions, workloads)
            unplaced = [
                f"{name} ({regions.unplaced[name]})"
                for name in decision.weights.keys() | decision.replicas_before.keys()
                if name in regions.unplaced
            ]
            if unplaced:
                message = "left out of the ranking: " + "; ".join(sorted(unplaced))
                await self._report_once(policy, "CarbonClusterWithoutRegion", message, warning=True)
            if decision.verdict is Verdict.FROZEN:
                message = f"weights kept: {decision.reason} (source {annotations.source})"
                await self._report_once(policy, "CarbonWeightsFrozen", message, warning=True)
            if not decision.writes:
                return Outcome(policy.ref, decision.verdict.value, decision.reason), view
            body = apply_body(
                policy, annotations, weights=decision.weights if self._apply else None
            )
            try:
                await self._writer.apply(policy.ref, body)
            except Stale:
                logger.info("%s changed since it was read; reading it again", policy.ref)
                fresh = await self._reread(policy.ref)
                if fresh is None:
                    return Outcome(policy.ref, "gone", "the policy was deleted or opted out"), None
                policy = fresh
                if attempt + 1 == _ATTEMPTS:
                    return Outcome(policy.ref, "weigh", "kept changing", "stale"), view
                continue
            except Conflict as e:
                await self._report_once(policy, "CarbonWeightsConflict", str(e), warning=True)
                return Outcome(policy.ref, "weigh", str(e), "conflict"), view
            except _ERRORS as e:
                logger.warning("%s keeps its weights until the next cycle: %s", policy.ref, e)
                return Outcome(policy.ref, "weigh", str(e), "failed"), view
            written = "applied" if self._apply else "proposed"
            text = weights_text(decision.weights)
            message = f"{'' if self._apply else 'would set '}weights {text}: {decision.reason}"
            logger.info("%s: %s", policy.ref, message)
            await self._event(
                policy.ref,
                "CarbonWeightsApplied" if self._apply else "CarbonWeightsProposed",
                message,
            )
            return Outcome(policy.ref, "weigh", decision.reason, written), view
        raise AssertionError("unreachable")  # the loop returns on its last attempt

    def _decide(
        self,
        policy: WatchedPolicy,
        members: Mapping[str, MemberCluster],
        regions: ClusterRegions,
        workloads: list[int],
    ) -> tuple[Decision, PolicyView, Annotations]:
        assert policy.placement is not None
        now = self._clock()
        eligibility = eligible_clusters(policy.placement, members.values())
        placed = {
            n: regions.regions[n].region for n in eligibility.clusters if n in regions.regions
        }
        ranking = rank(
            self._snapshot_source(),
            set(placed.values()),
            now=now,
            horizon_hours=self._horizon_hours,
        )
        scores = {score.region: score for score in ranking.scores}
        carbon = {
            name: ClusterCarbon(
                scores[region].expected_g_per_kwh, scores[region].freshness is Freshness.LIVE
            )
            for name, region in placed.items()
            if region in scores
        }
        expected = {name: value.expected_g_per_kwh for name, value in carbon.items()}
        eligibility = limit_groups(eligibility, members, policy.placement.spreads, expected)
        decision = decide(
            eligible=eligibility.clusters,
            carbon={n: c for n, c in carbon.items() if n in eligibility.clusters},
            current=policy.placement.current_weights(members.values()),
            workloads=workloads,
            last_change=policy.last_change,
            now=now,
            rules=self._rules,
        )
        ordered = sorted(
            ((n, v) for n, v in expected.items() if n in eligibility.clusters),
            key=lambda item: (item[1], item[0]),
        )
        sources = sorted({scores[placed[n]].source for n, _ in ordered})
        annotations = Annotations(
            ranking=",".join(f"{n}={round(v)}" for n, v in ordered),
            decided_at=now,
            source=",".join(sources) or "none",
            weights=decision.weights,
        )
        view = PolicyView(
            policy.ref,
            decision,
            dict(ordered),
            decided_at=now,
            source=annotations.source,
            regions=placed,
        )
        return decision, view, annotations

    async def _reread(self, ref: PolicyRef) -> WatchedPolicy | None:
        try:
            return await self._writer.read(ref)
        except _ERRORS as e:
            logger.warning("cannot read %s again: %s", ref, e)
            return None

    async def _report_once(
        self, policy: WatchedPolicy, reason: str, message: str, *, warning: bool = False
    ) -> None:
        key = (policy.ref, policy.resource_version, reason)
        if key in self._reported:
            return
        self._reported.add(key)
        logger.info("%s: %s", policy.ref, message)
        await self._event(policy.ref, reason, message, warning=warning)

    async def _event(
        self, ref: PolicyRef, reason: str, message: str, *, warning: bool = False
    ) -> None:
        try:
            await self._writer.record(ref, reason, message, warning=warning)
        except _ERRORS as e:
            logger.warning("event on %s not recorded: %s", ref, e)
