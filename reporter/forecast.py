"""Forecast views: the points within a horizon and the lowest-intensity window among them.

The window follows the GSF Carbon Aware SDK's ``optimalDataPoints`` semantics
(``EmissionsDataExtensions.RollingAverage`` and ``CarbonAwareOptimalEmission``): a rolling,
time-weighted average over ``window`` that starts at the first point and advances by the first
point's duration, emitted only where the data covers the whole window; then every window whose
average equals the minimum is kept, so ties are reported rather than broken arbitrarily. Unlike
the SDK, a gap in the data makes a window unusable instead of counting as 0 g.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.core.models import ForecastPoint


@dataclass(frozen=True, slots=True)
class Window:
    """Average intensity over ``[starts_at, starts_at + duration)``, gCO2eq/kWh."""

    starts_at: datetime
    duration: timedelta
    g_per_kwh: float


def points_within(
    points: Sequence[ForecastPoint], *, now: datetime, hours: int
) -> tuple[ForecastPoint, ...]:
    """Points overlapping ``[now, now + hours)`` in time order, the one covering ``now`` too."""
    end = now + timedelta(hours=hours)
    return tuple(
        sorted(
            (p for p in points if p.starts_at + p.duration > now and p.starts_at < end),
            key=lambda p: p.starts_at,
        )
    )


class _Coverage:
    """Prefix integrals of a step function, so any window's average costs two bisections."""

    def __init__(self, points: Sequence[ForecastPoint]) -> None:
        self._origin = points[0].starts_at
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._values: list[float] = []
        self._energy = [0.0]  # ∫ value dt up to the end of segment i
        self._covered = [0.0]  # seconds with data up to the end of segment i
        for point in points:
            start = self._seconds(point.starts_at)
            end = start + point.duration.total_seconds()
            if self._ends and start < self._ends[-1]:
                start = self._ends[-1]  # overlapping points: the earlier one wins
            if end <= start:
                continue
            self._starts.append(start)
            self._ends.append(end)
            self._values.append(point.g_per_kwh)
            self._energy.append(self._energy[-1] + point.g_per_kwh * (end - start))
            self._covered.append(self._covered[-1] + (end - start))

    def _seconds(self, at: datetime) -> float:
        return (at - self._origin).total_seconds()

    def _cumulative(self, t: float) -> tuple[float, float]:
        """(∫ value dt, seconds covered) from the origin up to ``t``."""
        index = bisect.bisect_right(self._starts, t) - 1
        if index < 0:
            return 0.0, 0.0
        inside = min(t, self._ends[index]) - self._starts[index]
        return (
            self._energy[index] + self._values[index] * inside,
            self._covered[index] + inside,
        )

    def average(self, start: datetime, end: datetime) -> float | None:
        """Mean over ``[start, end)``, None unless data covers all of it."""
        a, b = self._seconds(start), self._seconds(end)
        energy_a, covered_a = self._cumulative(a)
        energy_b, covered_b = self._cumulative(b)
        if not math.isclose(covered_b - covered_a, b - a, rel_tol=1e-9, abs_tol=1e-6):
            return None
        return (energy_b - energy_a) / (b - a)


def rolling_average(points: Sequence[ForecastPoint], window: timedelta | None) -> list[Window]:
    """One averaged window per tick across ``points`` (sorted); no window: the points themselves."""
    if not points:
        return []
    if window is None:
        return [Window(p.starts_at, p.duration, p.g_per_kwh) for p in points]
    tick = points[0].duration
    if tick <= timedelta(0) or window <= timedelta(0):
        raise ValueError("window and point duration must be positive")
    coverage = _Coverage(points)
    data_end = max(p.starts_at + p.duration for p in points)
    windows: list[Window] = []
    start = points[0].starts_at
    while start + window <= data_end:
        mean = coverage.average(start, start + window)
        if mean is not None:
            windows.append(Window(start, window, mean))
        start += tick
    return windows


def optimal_windows(windows: Sequence[Window]) -> list[Window]:
    """Every window with the lowest average (ties kept, equal within float rounding)."""
    if not windows:
        return []
    best = min(w.g_per_kwh for w in windows)
    return [w for w in windows if math.isclose(w.g_per_kwh, best, rel_tol=1e-9, abs_tol=1e-9)]
