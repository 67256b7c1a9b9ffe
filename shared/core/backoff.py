"""How long to wait before trying again after consecutive failures.

Exponential (the delay doubles per failure in a row), capped, and jittered so that replicas — or
many keys failing together — do not retry in step. A server's ``Retry-After`` is a floor the
caller may pass in; how far to trust it (capped or not) is the caller's decision. The random source
is injectable so tests can pin the jitter.
"""

from __future__ import annotations

import random

# Beyond this many doublings every sane cap has long been reached; bounding the exponent keeps a
# very long failure streak from overflowing the float.
_MAX_DOUBLINGS = 64


class Backoff:
    """Delays for the 1st, 2nd, … consecutive failure: ``initial`` doubling up to ``maximum``."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        """``jitter``: the share of each delay left to chance; the delay falls in
        ``[d * (1 - jitter), d]``. 0 gives the plain exponential delay and draws nothing from
        ``rng``.
        """
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {jitter}")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)

    def ceiling(self, failures: int) -> float:
        """The un-jittered delay after ``failures`` failures in a row (at least one)."""
        doublings = min(max(failures, 1) - 1, _MAX_DOUBLINGS)
        return min(self.maximum, self.initial * 2.0**doublings)

    def delay(self, failures: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` failures in a row, never less than ``retry_after``."""
        delay = self.ceiling(failures)
        if self.jitter:
            delay *= self._rng.uniform(1.0 - self.jitter, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
