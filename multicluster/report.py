"""The controller's current view of its policies as a JSON document: ``GET /api/v1/policies``.

Pure. Per policy (what the last cycle on the leader decided): which policy, the verdict, whether
the weights are frozen and why, when and on which carbon data; per member cluster: its region,
its weight, the replicas Karmada's division gives it and its region's expected intensity; and the
replica-weighted expected intensity under the carbon weights against equal weights, with the
relative saving. The same numbers as the Prometheus series, for readers without Prometheus (the
reporter polls it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from multicluster.decide import Decision, Verdict
from multicluster.policies import PolicyRef
from multicluster.settings import KarmadaMode
from shared.core.clock import rfc3339

_DIGITS = 3


@dataclass(frozen=True, slots=True)
class PolicyView:
    """One policy's decision as the metrics (and ``/api/v1/policies``) show it."""

    ref: PolicyRef
    decision: Decision
    intensities: Mapping[str, float]
    """Cluster → expected intensity of its region, gCO2eq/kWh."""
    decided_at: datetime
    source: str
    """The carbon data sources the ranking used, comma-separated (``none`` without data)."""
    regions: Mapping[str, str] = field(default_factory=dict)
    """Cluster → its cloud region, for the clusters that have one."""

    @property
    def policy(self) -> str:
        return str(self.ref)


def policies_document(
    views: Iterable[PolicyView], *, mode: KarmadaMode, leader: bool
) -> dict[str, Any]:
    """``{"mode", "leader", "policies": [...]}``, policies in the order given."""
    return {
        "mode": str(mode),
        "leader": leader,
        "policies": [policy_json(view) for view in views],
    }


def policy_json(view: PolicyView) -> dict[str, Any]:
    decision = view.decision
    frozen = decision.verdict is Verdict.FROZEN
    names = sorted(
        decision.weights.keys() | decision.replicas_after.keys() | view.intensities.keys()
    )
    return {
        "kind": str(view.ref.kind),
        "namespace": view.ref.namespace or None,
        "name": view.ref.name,
        "verdict": str(decision.verdict),
        "reason": decision.reason,
        "frozen": frozen,
        "frozenReason": decision.reason if frozen else None,
        "decidedAt": rfc3339(view.decided_at),
        "source": view.source,
        "clusters": [
            {
                "name": name,
                "region": view.regions.get(name),
                "weight": decision.weights.get(name),
                "estimatedReplicas": decision.replicas_after.get(name),
                "regionIntensity": _rounded(view.intensities.get(name)),
            }
            for name in names
        ],
        "estimatedIntensity": {
            "carbonWeights": _rounded(decision.intensity_after),
            "equalWeights": _rounded(decision.intensity_equal),
            "relativeSaving": _rounded(_saving(decision.intensity_after, decision.intensity_equal)),
        },
    }


def _saving(carbon: float | None, equal: float | None) -> float | None:
    """How much lower the carbon weights' expected intensity is than equal weights' (0.25: 25 %
    lower; negative when higher)."""
    if carbon is None or equal is None or equal <= 0:
        return None
    return (equal - carbon) / equal


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, _DIGITS)
