"""Read replicas that follow the grid: node-affinity terms on the carbon tier label, not regions.

Pure. The descheduler (``RemovePodsViolatingNodeAffinity``) judges a running pod against the
affinity written into it at creation. Region names never change, but the tier component moves
``carbon.stellar.org/tier`` between nodes as the ranking changes, so terms on the tier label let
a running replica be moved to whatever is greenest now. A following pod gets tier terms *instead
of* region terms: the descheduler sums the weights of every satisfied preferred term, so region
terms would keep anchoring the pod to the region it was first placed in.

A pod follows when it is a read replica (``stellar.org/role: read-replica``), does not say
``stellar.org/carbon-follow: "false"``, and at least one node it could run on carries a tier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from shared.cluster.room import Host
from shared.core.shapes import object_or_empty
from shared.scoring.ranking import DEFAULT_MIN_NODE_SHARE, PreferenceTerm
from shared.scoring.tiers import TIER_LABEL, TierPolicy, tier_value
from webhook.eligibility import Eligibility
from webhook.mutation import pointer_token
from webhook.review import JsonPatchOp
from webhook.selection import READ_REPLICA, ROLE_LABEL

FOLLOW_ANNOTATION = "stellar.org/carbon-follow"
"""``"false"`` keeps a read replica on region terms: placed once, never moved by tier changes."""
FOLLOWING_LABEL = "carbon.stellar.org/follows-tiers"
"""Set to ``"true"`` on every pod given tier terms. The descheduler selects pods by label only, so
its profile selects this label: a replica that opted out (an annotation) keeps region terms, and
would otherwise be evicted whenever a region it prefers more has a node it fits on."""

_POLICY = TierPolicy()


def follows(pod: Mapping[str, Any], eligibility: Eligibility) -> bool:
    """The pod gets tier terms: a read replica, not opted out, with tiered nodes to go to."""
    metadata = object_or_empty(pod.get("metadata"))
    labels = object_or_empty(metadata.get("labels"))
    annotations = object_or_empty(metadata.get("annotations"))
    return (
        labels.get(ROLE_LABEL) == READ_REPLICA
        and annotations.get(FOLLOW_ANNOTATION) != "false"
        and bool(eligibility.tiers)
    )


def following_label_op() -> JsonPatchOp:
    """The patch operation that marks a following pod for the descheduler's profile. A pod that
    follows is a read replica by its labels, so ``metadata.labels`` is an object to add into."""
    return {
        "op": "add",
        "path": f"/metadata/labels/{pointer_token(FOLLOWING_LABEL)}",
        "value": "true",
    }


def tier_terms(tiers: Collection[int], policy: TierPolicy = _POLICY) -> tuple[PreferenceTerm, ...]:
    """One preferred term per tier present, weighted ``policy.weight(tier)``, highest first; the
    dirtiest tier present gets none (like the dirtiest region), and with fewer than two tiers
    there is nothing to prefer. The ``regions`` of each term hold tier numbers as label values."""
    present = sorted(set(tiers))
    if len(present) < 2:
        return ()
    grouped: dict[int, list[str]] = {}
    for tier in present[:-1]:
        grouped.setdefault(policy.weight(tier), []).append(str(tier))
    return tuple(
        PreferenceTerm(weight=weight, regions=tuple(values))
        for weight, values in sorted(grouped.items(), reverse=True)
    )


def tier_requirement(top: int) -> dict[str, Any]:
    """The ``matchExpression`` that allows tiers ``0..top``: every tier up to ``top``, present
    or not, so a region that later enters one of them is allowed too."""
    return {"key": TIER_LABEL, "operator": "In", "values": [str(t) for t in range(top + 1)]}


def tier_hosts(hosts: Iterable[Host]) -> tuple[Host, ...]:
    """``hosts`` with each one's tier standing where its region stands, so the room maths
    (``shared.cluster.room``) sizes tier sets; a host without a tier is in none."""
    return tuple(
        dataclasses.replace(host, region=_tier_text(host.labels.get(TIER_LABEL))) for host in hosts
    )


def pool_tiers(tiers: Collection[int], holds: Callable[[Collection[str]], bool]) -> int | None:
    """The smallest ``k`` among the tiers present whose tiers ``0..k`` hold the pool (``holds``
    over ``tier_hosts``); None when even all of them cannot."""
    for top in sorted(set(tiers)):
        if holds(frozenset(str(t) for t in range(top + 1))):
            return top
    return None


def share_tiers(tiers: Mapping[int, int], share: float = DEFAULT_MIN_NODE_SHARE) -> int | None:
    """``require`` without a pool: the smallest ``k`` whose tiers ``0..k`` hold at least
    ``share`` of the tiered eligible nodes (tier 0 is the low-carbon band; greener tiers join
    until there is room, as regions do for the region set)."""
    total = sum(tiers.values())
    running = 0
    for top in sorted(tiers):
        running += tiers[top]
        if running > 0 and running >= share * total:
            return top
    return None


def covered_regions(tier_regions: Mapping[int, Iterable[str]], top: int) -> tuple[str, ...]:
    """The regions whose eligible nodes carry a tier ``0..top`` now: what a tier requirement
    lets the pod into at admission, for ``stellar.org/carbon-required-regions``."""
    return tuple(
        sorted({region for tier, names in tier_regions.items() if tier <= top for region in names})
    )


def _tier_text(label: str | None) -> str | None:
    tier = tier_value(label)
    return str(tier) if tier is not None else None
