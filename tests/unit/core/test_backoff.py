"""The one backoff rule: exponential, capped, jittered, with a Retry-After floor."""

from __future__ import annotations

import random

import pytest

from shared.core.backoff import Backoff


class TopOfRange(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


class BottomOfRange(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def test_the_delay_doubles_per_failure_up_to_the_maximum() -> None:
    backoff = Backoff(60.0, 900.0, rng=TopOfRange())
    assert [backoff.delay(n) for n in range(1, 7)] == [60.0, 120.0, 240.0, 480.0, 900.0, 900.0]


def test_jitter_takes_at_most_half_the_delay_by_default() -> None:
    assert Backoff(60.0, 900.0, rng=BottomOfRange()).delay(2) == 60.0
    seeded = Backoff(60.0, 900.0, rng=random.Random(7))
    assert all(60.0 <= seeded.delay(2) <= 120.0 for _ in range(200))


def test_without_jitter_the_delay_is_plain_and_draws_nothing() -> None:
    class NoDraws(random.Random):
        def uniform(self, a: float, b: float) -> float:
            raise AssertionError("drew a random number")

    backoff = Backoff(2.0, 30.0, jitter=0.0, rng=NoDraws())
    assert [backoff.delay(n) for n in range(1, 5)] == [2.0, 4.0, 8.0, 16.0]


def test_retry_after_is_a_floor_not_a_cap() -> None:
    backoff = Backoff(60.0, 900.0, rng=TopOfRange())
    assert backoff.delay(1, retry_after=1200.0) == 1200.0
    assert backoff.delay(1, retry_after=5.0) == 60.0


def test_a_very_long_failure_streak_stays_at_the_maximum() -> None:
    assert Backoff(0.5, 30.0, rng=TopOfRange()).delay(10_000) == 30.0


def test_jitter_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        Backoff(1.0, 2.0, jitter=1.5)
