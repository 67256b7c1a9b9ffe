"""Test tiers that need something built first are collected only when asked for.

``tests/release`` checks the artefacts ``make release`` builds (wheel, sdist, chart package); it is
collected only with ``--dist DIR``, which ``make release`` passes, so ``make check`` and
``make test`` neither run it nor count it as skipped. The header says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
