"""History series: stored samples folded into hourly or daily points, each saying how much of it
rests on live, stale or static intensity and how many hours are missing.

Pure functions. A point covers the hours of its step that lie in the asked range; an hour with
no sample is missing and adds nothing (it is never filled in). The sums over subjects and hours
come from the store (``HistoryStore.hourly`` and ``totals``, in SQL), so a month of a hundred
regions reaches Python as a few hundred rows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reporter.history.samples import HOUR, Coverage
from shared.core.clock import rfc3339

DAY = timedelta(days=1)
_NO_COVERAGE = dict.fromkeys(Coverage, 0)
"""Every class at zero; copied for each tally, as iterating an enum is slow per point."""


class Step(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"

    @property
    def length(self) -> timedelta:
        return HOUR if self is Step.HOUR else DAY


@dataclass(frozen=True, slots=True)
class Hourly:
    """One hour of one subject, or of several added up (the cluster is its regions)."""

    hour: datetime
    members: int
    energy_wh: float
    grams: float | None
    """Emissions of the subjects whose intensity was known; None when none was."""
    energy_with_grams_wh: float
    """The energy those emissions came from."""
    coverage: Coverage
    """The worst of the subjects' coverage."""
    baseline_grams: float | None = None
    grams_with_baseline: float = 0.0
    """Emissions of the subjects that have a baseline (read replicas)."""


@dataclass(slots=True)
class Tally:
    """Sums over some hours: energy, emissions where known, baseline, and coverage by class."""

    hours: int = 0
    """Hours in the range summed over; those without a sample count as missing."""
    energy_wh: float = 0.0
    grams: float | None = None
    energy_with_grams_wh: float = 0.0
    baseline_grams: float | None = None
    grams_with_baseline: float = 0.0
    member_hours: int = 0
    coverage: dict[Coverage, int] = field(default_factory=_NO_COVERAGE.copy)

    def add(self, hourly: Hourly) -> None:
        """Add one recorded hour."""
        self._sum(
            hourly.energy_wh,
            hourly.grams,
            hourly.energy_with_grams_wh,
            hourly.baseline_grams,
            hourly.grams_with_baseline,
            hourly.members,
        )
        self.coverage[hourly.coverage] += 1

    def merge(self, other: Tally) -> None:
        """Add ``other``'s sums (over the same range) to these."""
        self._sum(
            other.energy_wh,
            other.grams,
            other.energy_with_grams_wh,
            other.baseline_grams,
            other.grams_with_baseline,
            other.member_hours,
        )
        for cls, count in other.coverage.items():
            self.coverage[cls] += count

    def _sum(
        self,
        energy_wh: float,
        grams: float | None,
        energy_with_grams_wh: float,
        baseline_grams: float | None,
        grams_with_baseline: float,
        member_hours: int,
    ) -> None:
        self.energy_wh += energy_wh
        self.member_hours += member_hours
        self.energy_with_grams_wh += energy_with_grams_wh
        self.grams_with_baseline += grams_with_baseline
        if grams is not None:
            self.grams = (self.grams or 0.0) + grams
        if baseline_grams is not None:
            self.baseline_grams = (self.baseline_grams or 0.0) + baseline_grams

    @property
    def recorded(self) -> int:
        return sum(self.coverage.values())

    def coverage_json(self) -> dict[str, int]:
        coverage = self.coverage
        return {
            "live": coverage[Coverage.LIVE],
            "stale": coverage[Coverage.STALE],
            "static": coverage[Coverage.STATIC],
            # Hours without a sample at all are missing too.
            "missing": coverage[Coverage.MISSING] + self.hours - self.recorded,
        }

    def json(self) -> dict[str, Any]:
        """Energy, location-based emissions and coverage; emissions null when none are known."""
        intensity = (
            self.grams / (self.energy_with_grams_wh / 1000)
            if self.grams is not None and self.energy_with_grams_wh > 0
            else None
        )
        return {
            # Null, not zero, when no hour was recorded: a gap is not a quiet hour.
            "energyKWh": round(self.energy_wh / 1000, 6) if self.recorded else None,
            "kgCO2eq": _kg(self.grams),
            "carbonIntensity": round(intensity, 3) if intensity is not None else None,
            "coverage": self.coverage_json(),
        }

    def savings_json(self) -> dict[str, Any]:
        """Emissions against the even-spread baseline, over the hours that have both."""
        if self.baseline_grams is None:
            return {"baselineKgCO2eq": None, "savingsKgCO2eq": None, "savingsPercent": None}
        saved = self.baseline_grams - self.grams_with_baseline
        percent = saved / self.baseline_grams * 100 if self.baseline_grams > 0 else None
        return {
            "baselineKgCO2eq": _kg(self.baseline_grams),
            "savingsKgCO2eq": _kg(saved),
            "savingsPercent": round(percent, 2) if percent is not None else None,
        }


@dataclass(frozen=True, slots=True)
class SubjectTotal:
    """One subject's sums over a range, and what its figures rest on."""

    tally: Tally
    pues: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def _kg(grams: float | None) -> float | None:
    return None if grams is None else round(grams / 1000, 6)


def buckets(start: datetime, end: datetime, step: Step) -> Iterator[tuple[datetime, datetime]]:
    at = start
    while at < end:
        yield at, min(at + step.length, end)
        at += step.length


def points(
    hours: Sequence[Hourly],
    *,
    start: datetime,
    end: datetime,
    step: Step,
    replicas: Mapping[datetime, Hourly] | None = None,
) -> list[dict[str, Any]]:
    """One point per step from ``start`` to ``end``: gaps are points with nothing recorded."""
    out: list[dict[str, Any]] = []
    index = 0
    count = len(hours)
    for low, high in buckets(start, end, step):
        bucket = Tally(hours=int((high - low) / HOUR))
        while index < count and hours[index].hour < high:
            if hours[index].hour >= low:
                bucket.add(hours[index])
            index += 1
        recorded = bucket.recorded
        point = {
            "timestamp": rfc3339(low),
            "hours": bucket.hours,
            "nodes": round(bucket.member_hours / recorded, 2) if recorded else None,
            **bucket.json(),
            "readReplicas": None,
        }
        if replicas is not None:
            shared = Tally(hours=bucket.hours)
            at = low
            while at < high:
                hourly = replicas.get(at)
                if hourly is not None:
                    shared.add(hourly)
                at += HOUR
            point["readReplicas"] = {
                "energyKWh": round(shared.energy_wh / 1000, 6) if shared.recorded else None,
                "kgCO2eq": _kg(shared.grams),
                **shared.savings_json(),
            }
        out.append(point)
    return out
