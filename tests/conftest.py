"""Suite-wide test settings.

Hypothesis profiles: a bounded run for the suite, a long one for ``make fuzz``
(``HYPOTHESIS_PROFILE=fuzz``; ``FUZZ_EXAMPLES`` sets its example count).

Test tiers that need something built first are collected only when asked for: ``tests/release``
checks the artefacts ``make release`` builds (wheel, sdist, chart package); it is collected only
with ``--dist DIR``, which ``make release`` passes, so ``make check`` and ``make test`` neither run
it nor count it as skipped. The header says so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("suite", max_examples=100, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

RELEASE_TESTS = Path(__file__).parent / "release"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--dist",
        type=Path,
        default=None,
        help="directory holding the built release artefacts; enables tests/release",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("--dist") is None and collection_path.is_relative_to(RELEASE_TESTS):
        return True
    return None


def pytest_report_header(config: pytest.Config) -> str:
    dist = config.getoption("--dist")
    if dist is None:
        return "release artefact tests (tests/release): not collected; `make release` runs them"
    return f"release artefacts: {dist}"
