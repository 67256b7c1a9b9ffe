"""One admission decision, end to end: selection, eligibility, ranking, patch, response.

``admit`` is what both the HTTPS handler and the preview CLI call. It reads only in-memory data
(the carbon snapshot and the node inventory, through the callables it is given) and never raises:
any failure becomes ``allowed: true`` without a patch, so the webhook can never block a pod.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.clock import Clock
from shared.inventory import NodeInfo
from shared.models import Freshness
from shared.ranking import Ranking, low_carbon_set, preference_terms, rank
from shared.snapshot import CarbonSnapshot
from webhook.eligibility import eligible_regions
from webhook.errors import MutationError
from webhook.mutation import already_decided, mutate
from webhook.review import AdmissionRequest, JsonPatchOp, ResponseReview, allow
from webhook.selection import should_mutate
from webhook.settings import Policy

logger = logging.getLogger(__name__)

MUTATED = "mutated"
ERROR = "error"

_LIST_LIMIT = 4
"""Region names spelled out in one warning before it says ``+N more``."""


class Skip(enum.StrEnum):
    """Why a selected pod was still left unchanged."""

    ALREADY_DECIDED = "already-decided"
    NO_ELIGIBLE_NODES = "no-eligible-nodes"
    NO_CARBON_DATA = "no-carbon-data"
    UNSUPPORTED_SHAPE = "unsupported-shape"


@dataclass(frozen=True, slots=True)
class Placement:
    """The knobs of a decision that come from settings."""

    default_policy: Policy = Policy.PREFER
    horizon_hours: int = 24
    low_carbon_fraction: float = 0.10


@dataclass(frozen=True, slots=True)
class Admission:
    """The response to send plus what happened, for metrics, logs and the preview."""

    response: ResponseReview
    outcome: str
    """``mutated``, ``skipped:<reason>`` or ``error``: the metric label."""
    patch: tuple[JsonPatchOp, ...] = ()
    warnings: tuple[str, ...] = ()
    ranking: Ranking | None = field(default=None, compare=False)


def admit(
    request: AdmissionRequest,
    *,
    carbon: Callable[[], CarbonSnapshot],
    nodes: Callable[[], Mapping[str, NodeInfo]],
    placement: Placement,
    clock: Clock,
) -> Admission:
    """Decide on one validated request. Never raises."""
    try:
        return _decide(request, carbon=carbon, nodes=nodes, placement=placement, now=clock())
    except MutationError as e:
        logger.warning("left %s (uid %s) unchanged: %s", request.display_name, request.uid, e)
        return _skipped(request, Skip.UNSUPPORTED_SHAPE, [f"carbon-aware placement skipped: {e}"])
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


def _decide(
    request: AdmissionRequest,
    *,
    carbon: Callable[[], CarbonSnapshot],
    nodes: Callable[[], Mapping[str, NodeInfo]],
    placement: Placement,
    now: datetime,
) -> Admission:
    decision = should_mutate(request, default_policy=placement.default_policy)
    warnings = list(decision.warnings)
    if decision.reason is not None:
        return _skipped(request, decision.reason, warnings)
    pod = request.object
    assert pod is not None  # should_mutate skips requests without an object

    if already_decided(pod):
        return _skipped(request, Skip.ALREADY_DECIDED, warnings)
    eligibility = eligible_regions(pod, nodes().values())
    if eligibility.region_key is None or not eligibility.regions:
        warnings.append(
            "carbon-aware placement skipped: no schedulable node with a region label fits this pod"
        )
        return _skipped(request, Skip.NO_ELIGIBLE_NODES, warnings)

    ranking = rank(carbon(), eligibility.regions, now=now, horizon_hours=placement.horizon_hours)
    if not ranking.scores:
        warnings.append(
            f"carbon-aware placement skipped: no carbon data for {_names(ranking.unranked)}"
        )
        return _skipped(request, Skip.NO_CARBON_DATA, warnings)
    warnings.extend(data_quality_warnings(ranking))

    terms = preference_terms(ranking)
    low_carbon = tuple(
        region
        for region in low_carbon_set(ranking, fraction=placement.low_carbon_fraction)
        if eligibility.regions.get(region, 0) > 0
    )
    if decision.policy is Policy.REQUIRE and not low_carbon:
        warnings.append("carbon-policy require: no low-carbon region has schedulable nodes")
    patch = mutate(
        pod,
        ranking,
        terms,
        policy=decision.policy,
        region_key=eligibility.region_key,
        now=now,
        low_carbon=low_carbon,
    )
    if not patch:
        return _skipped(request, Skip.ALREADY_DECIDED, warnings)
    logger.info(
        "placing %s (uid %s) policy=%s ranking=%s",
        request.display_name,
        request.uid,
        decision.policy,
        ranking.annotation(),
    )
    return Admission(
        response=allow(request, patch=patch, warnings=warnings),
        outcome=MUTATED,
        patch=tuple(patch),
        warnings=tuple(warnings),
        ranking=ranking,
    )


def data_quality_warnings(ranking: Ranking) -> list[str]:
    """Say when the ranking rests on stale or static data, or leaves regions out."""
    warnings: list[str] = []
    stale = [s.region for s in ranking.scores if s.freshness is Freshness.STALE]
    static = [s.region for s in ranking.scores if s.freshness is Freshness.STATIC]
    if stale:
        warnings.append(f"carbon data is stale (last good values) for {_names(stale)}")
    if static:
        warnings.append(f"carbon data is a static annual average for {_names(static)}")
    if ranking.unranked:
        warnings.append(f"no carbon data, not ranked: {_names(ranking.unranked)}")
    return warnings


def _skipped(request: AdmissionRequest, reason: enum.StrEnum, warnings: list[str]) -> Admission:
    return Admission(
        response=allow(request, warnings=warnings),
        outcome=f"skipped:{reason.value}",
        warnings=tuple(warnings),
    )


def _names(regions: Iterable[str]) -> str:
    names = list(regions)
    shown = ", ".join(names[:_LIST_LIMIT])
    return shown if len(names) <= _LIST_LIMIT else f"{shown} +{len(names) - _LIST_LIMIT} more"
