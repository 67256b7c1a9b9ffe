"""History series: stored samples folded into hourly or daily points, each saying how much of it
rests on live, stale or static intensity and how many hours are missing.

Pure functions. A point covers the hours of its step that lie in the asked range; an hour with
no sample is missing and adds nothing (it is never filled in). The sums over subjects and hours
come from the store (``HistoryStore.hourly`` and ``totals``, in SQL), so a month of a hundred
regions reaches Python as a few hundred rows.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from reporter.history.samples import HOUR, Coverage

DAY = timedelta(days=1)
_EPOCH_DAY = date(1970, 1, 1)
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
        return _savings_json(self.baseline_grams, self.grams_with_baseline)


@dataclass(frozen=True, slots=True)
class SubjectTotal:
    """One subject's sums over a range, and what its figures rest on."""

    tally: Tally
    pues: list[float] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def _kg(grams: float | None) -> float | None:
    return None if grams is None else round(grams / 1000, 6)


def _savings_json(baseline_grams: float | None, grams_with_baseline: float) -> dict[str, Any]:
    if baseline_grams is None:
        return {"baselineKgCO2eq": None, "savingsKgCO2eq": None, "savingsPercent": None}
    saved = baseline_grams - grams_with_baseline
    percent = saved / baseline_grams * 100 if baseline_grams > 0 else None
    return {
        "baselineKgCO2eq": _kg(baseline_grams),
        "savingsKgCO2eq": _kg(saved),
        "savingsPercent": round(percent, 2) if percent is not None else None,
    }


HourSums = tuple[int, int, float, float | None, float, float | None, float, int]
"""One hour of one subject, or of several added up, as the store reads it: epoch hour, members,
energy (Wh), emissions where known (g, None when none were), the energy behind them, baseline
emissions (None when none), the emissions that have a baseline, and the worst coverage's rank."""

_HOUR_OF_DAY = tuple(f"T{hour:02d}:00:00Z" for hour in range(24))


@functools.lru_cache(maxsize=1024)
def _date(day: int) -> str:
    return (_EPOCH_DAY + timedelta(days=day)).isoformat()


def hour_stamp(hour: int) -> str:
    """``rfc3339`` of the start of epoch hour ``hour``, without a datetime per point."""
    return _date(hour // 24) + _HOUR_OF_DAY[hour % 24]


def points(
    hours: Sequence[HourSums],
    *,
    start: int,
    end: int,
    step: Step,
    replicas: Sequence[HourSums] | None = None,
) -> list[dict[str, Any]]:
    """One point per step over the epoch hours from ``start`` to ``end`` (``hours`` in hour
    order): gaps are points with nothing recorded.

    Added up exactly as ``Tally`` adds hours (from zero, in hour order), straight from the
    tuples: a month of hourly points is 720 of them, and an object per point cost more than the
    query."""
    length = 1 if step is Step.HOUR else 24
    by_hour = {row[0]: row for row in replicas} if replicas is not None else None
    out: list[dict[str, Any]] = []
    index, count = 0, len(hours)
    for low in range(start, end, length):
        high = min(low + length, end)
        first = index
        while index < count and hours[index][0] < high:
            index += 1
        if index - first == 1 and hours[first][0] >= low:
            inside: Sequence[HourSums] = hours[first:index]
        else:
            inside = [row for row in hours[first:index] if row[0] >= low]
        point = _point(low, high - low, _fold(inside), len(inside))
        if by_hour is not None:
            shared = [by_hour[at] for at in range(low, high) if at in by_hour]
            _, energy, grams, _, baseline, with_baseline, _ = _fold(shared)
            point["readReplicas"] = {
                "energyKWh": round(energy / 1000, 6) if shared else None,
                "kgCO2eq": _kg(grams),
                **(_savings_json(baseline, with_baseline) if baseline is not None else _NO_SAVINGS),
            }
        out.append(point)
    return out


_NO_SAVINGS = _savings_json(None, 0.0)


def _point(
    low: int,
    span: int,
    sums: tuple[int, float, float | None, float, float | None, float, list[int]],
    recorded: int,
) -> dict[str, Any]:
    members, energy, grams, energy_with_grams, _, _, coverage = sums
    intensity = (
        grams / (energy_with_grams / 1000) if grams is not None and energy_with_grams > 0 else None
    )
    return {
        "timestamp": hour_stamp(low),
        "hours": span,
        "nodes": round(members / recorded, 2) if recorded else None,
        # Null, not zero, when no hour was recorded: a gap is not a quiet hour.
        "energyKWh": round(energy / 1000, 6) if recorded else None,
        "kgCO2eq": None if grams is None else round(grams / 1000, 6),
        "carbonIntensity": round(intensity, 3) if intensity is not None else None,
        "coverage": {
            "live": coverage[0],
            "stale": coverage[1],
            "static": coverage[2],
            # Hours without a sample at all are missing too.
            "missing": coverage[3] + span - recorded,
        },
        "readReplicas": None,
    }


def _fold(
    rows: Sequence[HourSums],
) -> tuple[int, float, float | None, float, float | None, float, list[int]]:
    """``rows`` added up as ``Tally`` adds hours; coverage as hours per class rank."""
    members = 0
    energy = energy_with_grams = with_baseline = 0.0
    grams: float | None = None
    baseline: float | None = None
    coverage = [0, 0, 0, 0]
    for _, row_members, row_energy, row_grams, row_with_grams, row_baseline, row_with, rank in rows:
        energy += row_energy
        members += row_members
        energy_with_grams += row_with_grams
        with_baseline += row_with
        if row_grams is not None:
            grams = (grams or 0.0) + row_grams
        if row_baseline is not None:
            baseline = (baseline or 0.0) + row_baseline
        coverage[rank] += 1
    return members, energy, grams, energy_with_grams, baseline, with_baseline, coverage
