"""One admission decision, end to end: selection, eligibility, ranking, patch, response.

``admit`` is what both the HTTPS handler and the preview CLI call. It reads only in-memory data
(the carbon snapshot, the node inventory and the workloads, through the callables it is given) and
never raises: any failure becomes ``allowed: true`` without a patch, so the webhook can never
block a pod.

A read-pool pod (hard spread or anti-affinity rules between its pods, ``webhook.pools``) without
a ``stellar.org/carbon-policy`` annotation gets ``require`` with the smallest greenest region set
that holds the rest of its pool; when no set can, preferred terms only, a warning and the
``stellar.org/carbon-constraint`` annotation naming the rules in the way.

A read replica in a cluster whose nodes carry carbon tiers follows the grid (``webhook.follow``):
the same decision is written as terms on ``carbon.stellar.org/tier`` instead of region names,
with a pool's required set cut from tiers ``0..k`` instead of regions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo
from shared.cluster.workloads import EMPTY, StatefulSetInfo, Workloads
from shared.core.clock import Clock
from shared.core.shapes import object_or_empty
from shared.scoring.ranking import Ranking
from shared.scoring.tiers import TIER_LABEL
from webhook.decisions import DecisionCache, RegionChoice, region_list
from webhook.eligibility import Eligibility
from webhook.errors import MutationError
from webhook.follow import (
    covered_regions,
    following_label_op,
    follows,
    pool_tiers,
    share_tiers,
    tier_hosts,
    tier_requirement,
    tier_terms,
)
from webhook.mutation import already_decided, mutate, patch_for, patch_shape, preferred_term
from webhook.outcomes import ERROR, MUTATED, SkipReason, skipped
from webhook.pools import (
    CONSTRAINT_ANNOTATION,
    PoolNeed,
    may_have_hard_rules,
    owning_statefulset,
    pool_need,
)
from webhook.recall import Recall, decision_view, named, view_key
from webhook.review import (
    AdmissionRequest,
    EncodedPatch,
    JsonPatchOp,
    ResponseReview,
    allow,
    answer_again,
    answer_tail,
    encode_again,
    encode_review,
)
from webhook.selection import POD_KIND, should_mutate
from webhook.settings import Policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Placement:
    """The knobs of a decision that come from settings."""

    default_policy: Policy = Policy.PREFER
    horizon_hours: int = 24
    low_carbon_fraction: float = 0.10


@dataclass(slots=True)
class Admission:
    """The response to send plus what happened, for metrics, logs and the preview.

    Not frozen (nothing changes one after it is made): one is made for every request, and a
    frozen dataclass takes twice as long to make."""

    response: ResponseReview
    outcome: str
    """``mutated``, ``skipped:<reason>`` or ``error``: the metric label."""
    patch: tuple[JsonPatchOp, ...] = ()
    warnings: tuple[str, ...] = ()
    ranking: Ranking | None = field(default=None, compare=False)
    body: bytes | None = field(default=None, compare=False, repr=False)
    """``encode_review(response)`` when it is known already (an answer given again)."""

    def encoded(self) -> bytes:
        """The HTTP body of the response."""
        return self.body if self.body is not None else encode_review(self.response)


def admit(
    request: AdmissionRequest,
    *,
    carbon: Callable[[], CarbonSnapshot],
    nodes: Callable[[], Mapping[str, NodeInfo]],
    placement: Placement,
    clock: Clock,
    cache: DecisionCache | None = None,
    workloads: Callable[[], Workloads] = lambda: EMPTY,
    recall: Recall[Recalled] | None = None,
) -> Admission:
    """Decide on one validated request. Never raises.

    ``cache`` remembers eligibility and rankings between calls; without it, everything is
    computed for this request alone, with the same result. ``workloads`` gives the StatefulSets,
    namespaces and bound pods (none by default: a demo or file inventory). With ``recall``, a pod
    is decided on its ``decision_view`` and the answer is given again to pods with an equal view
    while the data and the second stay the same (``webhook.recall``). A server keeps both in an
    ``Admitter``.
    """
    admitter = Admitter(
        carbon=carbon,
        nodes=nodes,
        workloads=workloads,
        placement=placement,
        clock=clock,
        cache=cache if cache is not None else DecisionCache(max_entries=1),
        recall=recall,
    )
    return admitter(request)


class Admitter:
    """``admit`` with its sources, settings and memos bound once: what the server calls for
    every request."""

    def __init__(
        self,
        *,
        carbon: Callable[[], CarbonSnapshot],
        nodes: Callable[[], Mapping[str, NodeInfo]],
        workloads: Callable[[], Workloads],
        placement: Placement,
        clock: Clock,
        cache: DecisionCache,
        recall: Recall[Recalled] | None,
    ) -> None:
        self.carbon = carbon
        self.nodes = nodes
        self.workloads = workloads
        self.placement = placement
        self.clock = clock
        self.cache = cache
        self.recall = recall

    def __call__(self, request: AdmissionRequest) -> Admission:
        """Decide on one validated request. Never raises."""
        try:
            return self._answer(
                request, _Data(self.carbon(), self.nodes(), self.workloads()), self.clock()
            )
        except MutationError as e:
            logger.warning("left %s (uid %s) unchanged: %s", request.display_name, request.uid, e)
            return _skipped(
                request, SkipReason.UNSUPPORTED_SHAPE, [f"carbon-aware placement skipped: {e}"]
            )
        except Exception:
            logger.exception(
                "admission failed for %s (uid %s); allowing unchanged",
                request.display_name,
                request.uid,
            )
            warning = "carbon-aware placement failed internally; pod admitted unchanged"
            return Admission(
                response=allow(request, warnings=[warning]), outcome=ERROR, warnings=(warning,)
            )

    def _answer(self, request: AdmissionRequest, data: _Data, now: datetime) -> Admission:
        """The recalled answer for a pod whose view was decided on with the same data, else the
        decision (remembered when there is a ``recall`` and the pod may have equals)."""
        recall, pod = self.recall, request.object
        if (
            recall is None
            or type(pod) is not dict
            or request.operation != "CREATE"
            or request.kind != POD_KIND
            or named(pod)
        ):
            return self._decide(request, data, now)
        view = decision_view(pod)
        key = view_key(request.namespace, view)
        if key is None:
            return self._decide(request, data, now)
        era, pool_state = data.era(self.cache.decided_at(now)), data.pool_state(view)
        recalled = recall.get(key, era, pool_state)
        if recalled is not None:
            return recalled.again(request)
        answer = self._decide(request.with_object(view), data, now)
        recall.put(key, era, pool_state, Recalled(answer))
        return answer

    def _decide(self, request: AdmissionRequest, data: _Data, now: datetime) -> Admission:
        return _decide(request, data=data, placement=self.placement, now=now, cache=self.cache)


class _Data(NamedTuple):
    """The in-memory data one decision reads, each taken once (a named tuple: one is made per
    request)."""

    carbon: CarbonSnapshot
    nodes: Mapping[str, NodeInfo]
    workloads: Workloads

    def era(self, decided_at: str) -> tuple[object, ...]:
        """What every decision in this second depends on besides the pod: the node inventory
        and the snapshot, the second it is stamped with (``decided_at``, one text per second),
        and the StatefulSets and namespaces a pod inherits settings from."""
        state = self.workloads
        return (self.nodes, self.carbon, decided_at, state.statefulsets, state.namespaces)

    def pool_state(self, view: Mapping[str, Any]) -> tuple[object, ...]:
        """What a decision on ``view`` depends on besides the era: for a pool pod (hard spread
        or anti-affinity rules), the whole workload state (its bound pods and whether it has
        listed); nothing more for any other pod."""
        return (self.workloads,) if may_have_hard_rules(view) else ()


class Recalled:
    """A remembered answer and, once it is given again, the tail of its encoding."""

    __slots__ = ("answer", "tail")

    def __init__(self, answer: Admission) -> None:
        self.answer = answer
        self.tail: bytes | None = None

    def again(self, request: AdmissionRequest) -> Admission:
        """The answer given to ``request``: its uid and AdmissionReview version."""
        answer = self.answer
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s (uid %s) got the answer of an equal pod: %s",
                request.display_name,
                request.uid,
                answer.outcome,
            )
        tail = self.tail
        if tail is None:
            tail = self.tail = answer_tail(answer.response)
        return Admission(
            answer_again(answer.response, request),
            answer.outcome,
            answer.patch,
            answer.warnings,
            answer.ranking,
            encode_again(tail, request),
        )


def _decide(
    request: AdmissionRequest,
    *,
    data: _Data,
    placement: Placement,
    now: datetime,
    cache: DecisionCache,
) -> Admission:
    state, snapshot, nodes = data.workloads, data.carbon, data.nodes
    statefulset = _owner(request, state)
    namespace = state.namespaces.get(request.namespace)
    decision = should_mutate(
        request,
        default_policy=placement.default_policy,
        inherited=(
            statefulset.carbon_aware if statefulset is not None else None,
            namespace.carbon_aware if namespace is not None else None,
        ),
    )
    warnings = list(decision.warnings)
    if decision.reason is not None:
        return _skipped(request, decision.reason, warnings)
    pod = request.object
    assert pod is not None  # should_mutate skips requests without an object

    if already_decided(pod):
        return _skipped(request, SkipReason.ALREADY_DECIDED, warnings)
    eligibility, regions_key = cache.eligibility(pod, nodes)
    if eligibility.region_key is None or not eligibility.regions:
        warnings.append(
            "carbon-aware placement skipped: no schedulable node with a region label fits this pod"
        )
        return _skipped(request, SkipReason.NO_ELIGIBLE_NODES, warnings)

    pool = (
        cache.pool_rules(pod)
        if decision.policy is Policy.REQUIRE or not decision.explicit_policy
        else None
    )
    policy = decision.policy
    if pool is not None and not state.synced:
        # Without the pool's placed pods and replicas, a required set could strand them.
        warnings.append("read pool state not listed yet; preferred terms only")
        pool, policy = None, Policy.PREFER
    following = follows(pod, eligibility)
    extra: dict[str, str] = {}
    need: PoolNeed | None = None
    if pool is not None:
        policy = Policy.REQUIRE
        hosts = cache.pool_hosts(cache.spread_domains(pod, nodes), state)
        bound = state.bound_in(request.namespace)
        need = pool_need(pool, hosts, bound, statefulset)
    if need is None or following:
        # A following pod's required set is cut from tiers (``_follow_patch``), not regions.
        choice = cache.choice(
            snapshot,
            eligibility,
            regions_key,
            now=now,
            horizon_hours=placement.horizon_hours,
            low_carbon_fraction=placement.low_carbon_fraction,
        )
    else:
        choice = cache.pool_choice(
            snapshot,
            eligibility,
            regions_key,
            now=now,
            horizon_hours=placement.horizon_hours,
            low_carbon_fraction=placement.low_carbon_fraction,
            need=need,
            bound=bound,
        )
        if choice.ranking.scores and not choice.low_carbon:
            policy = Policy.PREFER
            warnings.append(_constrained(need, choice.ranking.regions, "region", extra))
    ranking = choice.ranking
    if not ranking.scores:
        warnings.append(
            f"carbon-aware placement skipped: no carbon data for {region_list(ranking.unranked)}"
        )
        return _skipped(request, SkipReason.NO_CARBON_DATA, warnings)
    warnings.extend(choice.warnings)
    excluded = cache.excluded_greener(
        snapshot, eligibility, regions_key, nodes, now=now, horizon_hours=placement.horizon_hours
    )
    if excluded and CONSTRAINT_ANNOTATION not in extra:
        rule = _own_rule(pod)
        extra[CONSTRAINT_ANNOTATION] = rule
        warnings.append(
            f"the pod's own {rule} excludes greener regions ({region_list(excluded)}); "
            "carbon placement is limited to the regions it allows"
        )

    decided_at = cache.decided_at(now)
    patch: Sequence[JsonPatchOp] | EncodedPatch
    if following:
        annotations = {**choice.annotations(decided_at), **extra}
        patch = _follow_patch(pod, eligibility, policy, need, annotations, warnings)
    else:
        if policy is Policy.REQUIRE and not choice.low_carbon:
            warnings.append("carbon-policy require: no low-carbon region has schedulable nodes")
        assert eligibility.region_key is not None
        patch = _region_patch(pod, choice, policy, eligibility.region_key, now, decided_at, extra)
    if not patch:
        return _skipped(request, SkipReason.ALREADY_DECIDED, warnings)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "placing %s (uid %s) policy=%s ranking=%s",
            request.display_name,
            request.uid,
            policy,
            ranking.annotation(),
        )
    return Admission(
        response=allow(request, patch=patch, warnings=warnings),
        outcome=MUTATED,
        patch=patch.ops if isinstance(patch, EncodedPatch) else tuple(patch),
        warnings=tuple(warnings),
        ranking=ranking,
    )


def _region_patch(
    pod: Mapping[str, Any],
    choice: RegionChoice,
    policy: Policy,
    region_key: str,
    now: datetime,
    decided_at: str,
    extra: dict[str, str],
) -> EncodedPatch:
    """``mutate``'s patch of ``pod`` for ``choice``, decided at ``now`` (``decided_at`` is its
    ``rfc3339``) with the ``extra`` annotations, remembered with the choice by the pod's
    ``patch_shape``: pods of one shape arriving in one second get the same patch, built and
    encoded once."""
    shape = patch_shape(pod)
    key = (shape, policy, region_key, decided_at, *extra.items()) if shape is not None else None
    remembered = choice.remembered_patch(key) if key is not None else None
    if remembered is None:
        remembered = EncodedPatch.of(
            mutate(
                pod,
                choice.ranking,
                choice.terms,
                policy=policy,
                region_key=region_key,
                now=now,
                low_carbon=choice.low_carbon,
                annotations={**choice.annotations(decided_at), **extra},
            )
        )
        if key is not None:
            choice.remember_patch(key, remembered)
    return remembered


def _follow_patch(
    pod: Mapping[str, Any],
    eligibility: Eligibility,
    policy: Policy,
    need: PoolNeed | None,
    annotations: dict[str, str],
    warnings: list[str],
) -> list[JsonPatchOp]:
    """Tier terms for a pod that follows the grid (``webhook.follow``), instead of region terms:
    a pool pod gets the smallest tier prefix that holds its pool, ``require`` the prefix with a
    third of the tiered nodes."""
    top: int | None = None
    if need is not None:
        tiered = dataclasses.replace(need, hosts=tier_hosts(need.hosts))
        top = pool_tiers(eligibility.tiers, tiered.holds())
        if top is None:
            tiers = [str(t) for t in sorted(eligibility.tiers)]
            warnings.append(_constrained(tiered, tiers, "tier", annotations))
    elif policy is Policy.REQUIRE:
        top = share_tiers(eligibility.tiers)
    requirement = tier_requirement(top) if top is not None else None
    ops = patch_for(
        pod,
        [preferred_term(term, TIER_LABEL) for term in tier_terms(eligibility.tiers)],
        requirement,
        annotations,
        required_regions=(
            covered_regions(eligibility.tier_regions, top) if top is not None else ()
        ),
    )
    if ops:
        ops.append(following_label_op())
    return ops


def _constrained(
    need: PoolNeed, domains: Collection[str], kind: str, annotations: dict[str, str]
) -> str:
    """Record in ``annotations`` the rules that keep every set of ``domains`` from holding the
    pool, and return the one-line warning."""
    blocking = need.blocking(domains)
    annotations[CONSTRAINT_ANNOTATION] = ",".join(blocking)
    more = f" +{len(blocking) - 1} more" if len(blocking) > 1 else ""
    # Preferred terms only; the annotation names every rule, the warning stays one line.
    return (
        f"carbon-policy require: no {kind} set holds {need.wanted} more pool pods"
        f" under {blocking[0]}{more}"
    )


def _own_rule(pod: Mapping[str, Any]) -> str:
    """Which of the pod's own placement rules narrows its regions, for the constraint annotation:
    its required node affinity (the operator's jurisdiction placement writes one), else its node
    selector, else the taints it does not tolerate."""
    spec = object_or_empty(pod.get("spec"))
    node_affinity = object_or_empty(object_or_empty(spec.get("affinity")).get("nodeAffinity"))
    if node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"):
        return "nodeAffinity"
    if spec.get("nodeSelector"):
        return "nodeSelector"
    return "tolerations"


def _owner(request: AdmissionRequest, state: Workloads) -> StatefulSetInfo | None:
    pod = request.object
    if not isinstance(pod, dict) or not state.statefulsets:
        return None
    return owning_statefulset(pod, request.namespace, state)


def _skipped(request: AdmissionRequest, reason: SkipReason, warnings: list[str]) -> Admission:
    return Admission(
        response=allow(request, warnings=warnings),
        outcome=skipped(reason),
        warnings=tuple(warnings),
    )
