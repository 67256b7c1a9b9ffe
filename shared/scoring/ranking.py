"""Which regions are greenest over the life of a read replica, and how strongly to prefer them.

Pure functions over ``shared.core.models`` values: the expected intensity of a region over a
horizon,
a ``Ranking`` of regions by it, the weighted preference terms the webhook turns into node affinity,
and the low-carbon region set the ``require`` policy restricts pods to. No I/O here.

Why a region's weight is ``100 * (best / v) ** 2``: kube-scheduler divides the NodeAffinity score
by the highest raw score among the feasible nodes and weighs the plugin 2, so between the greenest
region with room (weight ``w1``) and another (``w2``) the terms swing ``200 * (1 - w2 / w1)`` of
the node's points. Against them, for a read replica: LeastAllocated (weight 1) swings up to about
50 points between nodes 25-75 % full, and the default topology spreading (weight 2) about 80-120
points between an empty node and one already running a replica of the pool. With the square, a
region 10 % dirtier than the best gives up 35 points (near-equal regions may still be spread over,
at little carbon cost), 25 % dirtier 72, 1.5x 111, 2x 150, 3x 178: the dirtier the region, the
more of the other scores it takes to land there. Weights falling linearly from best to worst
give a region 2x the best 89 when the worst is 10x: a 22-point swing that spreading alone
outweighs. A steeper power (3 or 4) drops the third to fifth greenest regions to weights of 1-2,
level with the dirty tail; since the scheduler rescales by the best feasible weight, those small
weights are what orders the rest once the greenest regions are full, and the square still tells
them apart (25 at 2x, 11 at 3x, 4 at 5x, 1 at 10x).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.carbon.snapshot import CarbonSnapshot
from shared.core.models import Forecast, Freshness, Intensity

DEFAULT_HORIZON_HOURS = 24
DEFAULT_LOW_CARBON_FRACTION = 0.10
"""Regions within 10 % of the best expected intensity count as low-carbon under ``require``."""
DEFAULT_MIN_NODE_SHARE = 1 / 3
"""Under ``require``, the low-carbon set grows until it holds at least this share of the nodes."""

_MAX_WEIGHT = 100
_WEIGHT_EXPONENT = 2
"""Weights fall with the square of the intensity ratio to the best (see the module docstring)."""
_FRESHNESS_ORDER = (Freshness.LIVE, Freshness.STALE, Freshness.STATIC)


@dataclass(frozen=True, slots=True)
class RegionScore:
    """One ranked region: expected intensity over the horizon and where the numbers came from."""

    region: str
    expected_g_per_kwh: float
    """Time-weighted mean intensity over the horizon, gCO2eq/kWh."""
    source: str
    """``Provenance.label`` of the current reading the score is anchored on, e.g. ``static``."""
    freshness: Freshness
    """The worst freshness among the data that went into the score."""
    current_g_per_kwh: float


@dataclass(frozen=True, slots=True)
class Ranking:
    """Regions ordered from greenest to dirtiest, plus the regions nothing is known about."""

    scores: tuple[RegionScore, ...]
    """Ascending by expected intensity; ties broken by region name."""
    unranked: tuple[str, ...]
    """Requested regions without any carbon data (never treated as 0 g); sorted."""
    horizon_hours: int
    computed_at: datetime

    @property
    def greenest(self) -> RegionScore | None:
        """The first region in ranked order, None when nothing could be ranked."""
        return self.scores[0] if self.scores else None

    @property
    def regions(self) -> tuple[str, ...]:
        """Ranked region names, greenest first."""
        return tuple(score.region for score in self.scores)

    @property
    def stale(self) -> bool:
        """Some score rests on data that is not live (stale cache or static annual average)."""
        return any(score.freshness is not Freshness.LIVE for score in self.scores)

    def annotation(self) -> str:
        """``us-west-2=118,europe-west1=180``: rounded expected gCO2eq/kWh in ranked order."""
        return ",".join(f"{s.region}={round(s.expected_g_per_kwh)}" for s in self.scores)

    def sources(self) -> tuple[str, ...]:
        """The distinct provenance labels the ranking used, sorted."""
        return tuple(sorted({score.source for score in self.scores}))


@dataclass(frozen=True, slots=True)
class PreferenceTerm:
    """Regions that get the same preferred-affinity weight (1..100)."""

    weight: int
    regions: tuple[str, ...]


def _worst(a: Freshness, b: Freshness) -> Freshness:
    return max(a, b, key=_FRESHNESS_ORDER.index)


def _forecast_steps(
    current: Intensity | None, forecast: Forecast | None, now: datetime
) -> list[tuple[datetime, float]]:
    """The step function as (from, value) pairs, the first one starting at ``now``.

    A forecast point's value holds from its start until the next point starts, which covers both
    gaps between points (previous value) and the time past the forecast's end (last value). The
    current reading describes the present better than any prediction, so it holds until the first
    point that starts after ``now``; only without a current reading does a point covering ``now``
    (or, failing that, the first future point) stand in for the present.
    """
    points = sorted(forecast.points, key=lambda p: p.starts_at) if forecast else []
    past = [p for p in points if p.starts_at <= now]
    future = [p for p in points if p.starts_at > now]
    if current is not None:
        present = current.g_per_kwh
    elif past:
        present = past[-1].g_per_kwh
    elif future:
        present = future[0].g_per_kwh
    else:
        return []
    return [(now, present), *((p.starts_at, p.g_per_kwh) for p in future)]


def _uses_forecast(forecast: Forecast | None, *, now: datetime, horizon_hours: int) -> bool:
    if forecast is None:
        return False
    end = now + timedelta(hours=horizon_hours)
    return any(now < p.starts_at < end for p in forecast.points)


def expected_intensity(
    current: Intensity | None,
    forecast: Forecast | None,
    *,
    now: datetime,
    horizon_hours: int = DEFAULT_HORIZON_HOURS,
) -> float | None:
    """Time-weighted mean intensity over ``[now, now + horizon_hours)``, gCO2eq/kWh.

    The current reading holds from ``now`` until the first forecast point starting after ``now``;
    each point's value holds until the next point starts (gaps keep the previous value, and past the
    forecast's end the last value holds). No forecast: the current value. Nothing known: None,
    never 0.
    """
    if horizon_hours <= 0:
        raise ValueError(f"horizon_hours must be positive, got {horizon_hours}")
    steps = _forecast_steps(current, forecast, now)
    if not steps:
        return None
    end = now + timedelta(hours=horizon_hours)
    starts = [at for at, _ in steps]
    # Only steps starting inside the horizon matter; the last one runs to its end.
    inside = steps[: bisect.bisect_left(starts, end)]
    total = 0.0
    for index, (at, value) in enumerate(inside):
        until = inside[index + 1][0] if index + 1 < len(inside) else end
        total += value * (until - at).total_seconds()
    return total / (end - now).total_seconds()


def rank(
    snapshot: CarbonSnapshot,
    regions: Iterable[str],
    *,
    now: datetime,
    horizon_hours: int = DEFAULT_HORIZON_HOURS,
) -> Ranking:
    """Rank ``regions`` by expected intensity; those without a current reading are unranked."""
    scores: list[RegionScore] = []
    unranked: set[str] = set()
    for region in set(regions):
        carbon = snapshot.get(region)
        current = carbon.current if carbon is not None else None
        if carbon is None or current is None:
            unranked.add(region)
            continue
        expected = expected_intensity(
            current, carbon.forecast, now=now, horizon_hours=horizon_hours
        )
        if expected is None:  # cannot happen with a current reading; keeps the type honest
            unranked.add(region)
            continue
        freshness = current.provenance.freshness
        if carbon.forecast is not None and _uses_forecast(
            carbon.forecast, now=now, horizon_hours=horizon_hours
        ):
            freshness = _worst(freshness, carbon.forecast.provenance.freshness)
        scores.append(
            RegionScore(
                region=region,
                expected_g_per_kwh=expected,
                source=current.provenance.label,
                freshness=freshness,
                current_g_per_kwh=current.g_per_kwh,
            )
        )
    scores.sort(key=lambda s: (s.expected_g_per_kwh, s.region))
    return Ranking(
        scores=tuple(scores),
        unranked=tuple(sorted(unranked)),
        horizon_hours=horizon_hours,
        computed_at=now,
    )


def preference_terms(ranking: Ranking) -> tuple[PreferenceTerm, ...]:
    """Preferred-affinity terms: greenest 100, the others ``100 * (best / v) ** 2``, dirtiest none.

    ``v`` is a region's expected intensity and ``best`` the greenest one's; weights are rounded. A
    region whose weight would round below 1 (more than about 14x the best, or any region when the
    best is 0 g) still gets 1: it stays ahead of the dirtiest region, which gets no term, when
    everything greener is full. Regions with the same weight share one term (names sorted). With
    fewer than two distinct expected values there is nothing to prefer, so no terms at all. Terms
    are ordered by weight, highest first.
    """
    values = [score.expected_g_per_kwh for score in ranking.scores]
    if len(set(values)) < 2:
        return ()
    best, worst = min(values), max(values)
    grouped: dict[int, list[str]] = {}
    for score in ranking.scores:
        if score.expected_g_per_kwh == worst:
            continue
        grouped.setdefault(_weight(score.expected_g_per_kwh, best), []).append(score.region)
    return tuple(
        PreferenceTerm(weight=weight, regions=tuple(sorted(names)))
        for weight, names in sorted(grouped.items(), reverse=True)
    )


def _weight(value: float, best: float) -> int:
    if value <= best:
        return _MAX_WEIGHT
    # best <= 0 g: every region above it is infinitely dirtier in ratio; keep the floor of 1.
    ratio = best / value if best > 0 else 0.0
    return max(1, min(_MAX_WEIGHT, round(_MAX_WEIGHT * ratio**_WEIGHT_EXPONENT)))


def low_carbon_set(
    ranking: Ranking,
    *,
    fraction: float = DEFAULT_LOW_CARBON_FRACTION,
    node_counts: Mapping[str, int] | None = None,
    min_node_share: float = DEFAULT_MIN_NODE_SHARE,
    holds: Callable[[Collection[str]], bool] | None = None,
) -> tuple[str, ...]:
    """The regions the ``require`` policy allows, in ranked order.

    A region qualifies when its expected intensity is at most ``best * (1 + fraction)``, where
    ``best`` is the greenest expected intensity; the greenest region(s) always qualify.
    ``fraction=0`` keeps just the region(s) tied for greenest.

    With ``node_counts`` (region -> nodes that could run the pod) the set is capacity-aware: while
    it holds fewer than ``min_node_share`` of the nodes in the ranked regions, the next greenest
    regions join it, all regions tied at one expected intensity together. One or two green regions
    rarely have room for a whole read pool, and pods outside the set stay Pending. Regions without
    nodes are then left out, since no pod could land there. ``min_node_share=0`` turns the growth
    off. The set is empty only when nothing is ranked (or, with ``node_counts``, no ranked region
    has nodes).

    With ``holds`` (can these regions hold the pool? see ``shared.cluster.room.holds_pool``) the
    set is sized from the pool instead: the smallest prefix of the ranking, greenest first and
    regions tied at one expected intensity together, that holds it; ``fraction`` and
    ``min_node_share`` are not used. Every region the set adds widens the pool's spread domains,
    so no region joins that the pool does not need. When even all ranked regions cannot hold it,
    the set is empty: a required set would strand pods, so only preferred terms remain.
    """
    if fraction < 0:
        raise ValueError(f"fraction must not be negative, got {fraction}")
    if not 0 <= min_node_share <= 1:
        raise ValueError(f"min_node_share must be between 0 and 1, got {min_node_share}")
    greenest = ranking.greenest
    if greenest is None:
        return ()
    if holds is not None:
        return _pool_sized_set(ranking, node_counts, holds)
    limit = greenest.expected_g_per_kwh * (1 + fraction)
    chosen = [
        score
        for score in ranking.scores
        if score.expected_g_per_kwh <= limit
        or score.expected_g_per_kwh == greenest.expected_g_per_kwh
    ]
    if node_counts is None:
        return tuple(score.region for score in chosen)

    def nodes(scores: Iterable[RegionScore]) -> int:
        return sum(max(0, node_counts.get(score.region, 0)) for score in scores)

    wanted = min_node_share * nodes(ranking.scores)
    rest = ranking.scores[len(chosen) :]  # ranked ascending, so the qualifiers are a prefix
    while rest and nodes(chosen) < wanted:
        tied = [score for score in rest if score.expected_g_per_kwh == rest[0].expected_g_per_kwh]
        chosen.extend(tied)
        rest = rest[len(tied) :]
    return tuple(score.region for score in chosen if node_counts.get(score.region, 0) > 0)


def _pool_sized_set(
    ranking: Ranking,
    node_counts: Mapping[str, int] | None,
    holds: Callable[[Collection[str]], bool],
) -> tuple[str, ...]:
    chosen: list[str] = []
    rest = list(ranking.scores)
    while rest:
        tied = [score for score in rest if score.expected_g_per_kwh == rest[0].expected_g_per_kwh]
        rest = rest[len(tied) :]
        added = [s.region for s in tied if node_counts is None or node_counts.get(s.region, 0) > 0]
        if not added:
            continue
        chosen.extend(added)
        if holds(frozenset(chosen)):
            return tuple(chosen)
    return ()
