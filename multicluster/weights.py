"""Static cluster weights from expected intensity, and how Karmada divides replicas by them.

Pure. ``carbon_weights`` gives the greenest cluster ``MAX_WEIGHT`` and every other one
``MAX_WEIGHT × (best / v) ** exponent``, rounded, never below the floor: integers, as Karmada's
``staticWeightList`` wants, greenest highest, the same inputs always giving the same weights.
The default exponent is 4 (docs/karmada.md has the measurement behind it): the webhook's square
rule is tuned to swing kube-scheduler's node scores against other plugins, but a static weight is
a replica share outright, so a steeper fall sends more of the pool to the cleanest grid.

``divide`` is Karmada's ``assignByStaticWeightStrategy``: each cluster takes the highest weight of
the entries that match it, and replicas go one at a time by the Webster (Sainte-Laguë) method to
the cluster with the highest ``weight / (2 × replicas + 1)``. Karmada breaks exact ties with a
hash of the binding's UID; here the cluster with fewer replicas, then the smaller name, wins, so an
estimate may differ from the scheduler by one replica between two tied clusters.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Final

MAX_WEIGHT: Final = 100
DEFAULT_EXPONENT: Final = 4.0


def carbon_weights(
    expected: Mapping[str, float],
    *,
    floor: int = 1,
    exponent: float = DEFAULT_EXPONENT,
    unranked: tuple[str, ...] = (),
) -> dict[str, int]:
    """Cluster → weight for the ranked clusters (``expected``: gCO2eq/kWh) and the floor for
    ``unranked`` ones (eligible, but without a region or carbon data: kept, never preferred).

    With ``floor`` 0, clusters whose weight rounds to 0 are left out, and Karmada gives a cluster
    outside the list no replicas: the user's way of letting dirty clusters empty.
    """
    if floor < 0:
        raise ValueError(f"floor must not be negative, got {floor}")
    if exponent <= 0:
        raise ValueError(f"exponent must be positive, got {exponent}")
    weights: dict[str, int] = {}
    if expected:
        best = min(expected.values())
        for cluster, value in expected.items():
            if value <= best:
                weight = MAX_WEIGHT
            else:
                ratio = best / value if best > 0 else 0.0
                weight = round(MAX_WEIGHT * ratio**exponent)
            weight = max(floor, min(MAX_WEIGHT, weight))
            if weight > 0:
                weights[cluster] = weight
    for cluster in unranked:
        if floor > 0 and cluster not in weights:
            weights[cluster] = floor
    return dict(sorted(weights.items()))


def divide(replicas: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Replicas per cluster as Karmada's static-weight division gives them.

    ``weights`` are the candidates' weights (a cluster missing or at 0 gets nothing); when they sum
    to 0 every candidate weighs 1, as in Karmada's ``getStaticWeightInfoList``.
    """
    if replicas < 0:
        raise ValueError(f"replicas must not be negative, got {replicas}")
    votes = {name: weight for name, weight in weights.items() if weight > 0}
    if not votes:
        votes = dict.fromkeys(weights, 1)
    seats = dict.fromkeys(weights, 0)
    if not votes:
        return seats
    # Max-heap on the Webster priority; ties: fewer seats, then the smaller name.
    heap = [(-float(vote), 0, name) for name, vote in votes.items()]
    heapq.heapify(heap)
    for _ in range(replicas):
        _, held, name = heapq.heappop(heap)
        seats[name] = held + 1
        heapq.heappush(heap, (-votes[name] / (2 * seats[name] + 1), seats[name], name))
    return dict(sorted(seats.items()))


def mean_intensity(replicas: Mapping[str, int], expected: Mapping[str, float]) -> float | None:
    """Replica-weighted mean expected intensity (gCO2eq/kWh) over the clusters with data; None
    when no replica sits in a cluster with data. Per-replica power is the same everywhere, so
    this is what a division's emissions scale with."""
    counted = {name: count for name, count in replicas.items() if name in expected and count > 0}
    total = sum(counted.values())
    if total == 0:
        return None
    return sum(count * expected[name] for name, count in counted.items()) / total


def moved(before: Mapping[str, int], after: Mapping[str, int]) -> int:
    """Replicas that change cluster between two divisions of the same pool."""
    return sum(max(0, after.get(name, 0) - before.get(name, 0)) for name in after)


def blend(
    before: Mapping[str, int], target: Mapping[str, int], fraction: float, *, floor: int
) -> dict[str, int]:
    """Weights ``fraction`` of the way from ``before``'s shares to ``target``'s, rescaled so the
    largest is ``MAX_WEIGHT``. ``target``'s clusters keep at least the floor; a cluster only in
    ``before`` fades out (callers pass only clusters the policy allows in both)."""
    names = sorted(set(before) | set(target))
    sum_before = sum(before.values()) or 1
    sum_target = sum(target.values()) or 1
    shares = {
        name: (1 - fraction) * before.get(name, 0) / sum_before
        + fraction * target.get(name, 0) / sum_target
        for name in names
    }
    top = max(shares.values(), default=0.0)
    if top <= 0:
        return dict(target)
    out = {}
    for name in names:
        weight = round(MAX_WEIGHT * shares[name] / top)
        if name in target:
            weight = max(weight, floor)
        if weight > 0:
            out[name] = weight
    return out
