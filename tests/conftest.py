"""Hypothesis profiles: a bounded run for the suite, a long one for ``make fuzz``.

``HYPOTHESIS_PROFILE=fuzz`` selects the long run; ``FUZZ_EXAMPLES`` sets its example count."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("suite", max_examples=100, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))
