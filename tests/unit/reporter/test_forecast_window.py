"""The lowest-intensity window: the GSF Carbon Aware SDK's rolling average with ties kept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reporter.forecast import optimal_windows, points_within, rolling_average
from shared.core.models import ForecastPoint
from tests.unit.reporter.cluster import NOW

FIVE = timedelta(minutes=5)


def points(*values: float, step: timedelta = FIVE) -> list[ForecastPoint]:
    return [ForecastPoint(NOW + i * step, v, step) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("values", "averages"),
    [
        # The three examples of the SDK's EmissionsDataExtensions.RollingAverage doc comment.
        ((10, 20, 30, 40, 5), [15, 25, 35, 22.5]),
        ((5, 55, 10, 10, 10), [30, 32.5, 10, 10]),
        ((12, 11, 10, 12, 13), [11.5, 10.5, 11, 12.5]),
    ],
)
def test_a_ten_minute_window_over_five_minute_points_averages_like_the_sdk(
    values: tuple[float, ...], averages: list[float]
) -> None:
    windows = rolling_average(points(*values), timedelta(minutes=10))
    assert [w.g_per_kwh for w in windows] == pytest.approx(averages)
    assert [w.starts_at for w in windows] == [NOW + i * FIVE for i in range(len(averages))]
    assert all(w.duration == timedelta(minutes=10) for w in windows)


def test_the_single_cheapest_point_is_not_optimal_when_the_window_cannot_fit_after_it() -> None:
    best = optimal_windows(rolling_average(points(10, 20, 30, 40, 5), timedelta(minutes=10)))
    assert [(w.starts_at, w.g_per_kwh) for w in best] == [(NOW, 15)]


def test_windows_tied_for_the_lowest_average_are_all_kept() -> None:
    best = optimal_windows(rolling_average(points(5, 55, 10, 10, 10), timedelta(minutes=10)))
    assert [w.starts_at for w in best] == [NOW + 2 * FIVE, NOW + 3 * FIVE]
    assert [w.g_per_kwh for w in best] == pytest.approx([10, 10])


def test_without_a_window_the_points_themselves_are_compared() -> None:
    best = optimal_windows(rolling_average(points(30, 7, 9, 7), None))
    assert [(w.starts_at, w.duration, w.g_per_kwh) for w in best] == [
        (NOW + FIVE, FIVE, 7),
        (NOW + 3 * FIVE, FIVE, 7),
    ]


def test_a_window_partly_over_a_point_weights_that_point_by_the_overlap() -> None:
    hourly = points(100, 200, 400, step=timedelta(hours=1))
    windows = rolling_average(hourly, timedelta(minutes=90))
    # [0, 90 min): 60 min at 100 and 30 min at 200; [60, 150 min): 60 at 200 and 30 at 400.
    assert [w.g_per_kwh for w in windows] == pytest.approx([400 / 3, 800 / 3])


def test_a_gap_in_the_forecast_makes_windows_across_it_unusable_instead_of_zero() -> None:
    data = [*points(50, 60), ForecastPoint(NOW + 3 * FIVE, 70, FIVE)]
    windows = rolling_average(data, timedelta(minutes=10))
    assert [(w.starts_at, w.g_per_kwh) for w in windows] == [(NOW, 55)]


def test_a_window_longer_than_the_data_yields_nothing() -> None:
    assert rolling_average(points(1, 2), timedelta(minutes=15)) == []
    assert optimal_windows([]) == []


def test_points_within_the_horizon_include_the_one_covering_now() -> None:
    hourly = points(1, 2, 3, 4, 5, step=timedelta(hours=1))
    inside = points_within(hourly, now=NOW + timedelta(minutes=30), hours=2)
    assert [p.g_per_kwh for p in inside] == [1, 2, 3]
