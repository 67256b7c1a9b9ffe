"""One version number: the Python package, the chart, the chart's appVersion and the changelog."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.tools import REPO


def package_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def test_the_chart_version_and_app_version_are_the_package_version() -> None:
    chart = yaml.safe_load((REPO / "charts" / "stellar-carbon" / "Chart.yaml").read_text())
    assert chart["version"] == package_version()
    assert chart["appVersion"] == package_version()


def test_the_changelog_opens_with_the_package_version() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    first = re.search(r"^## (\S+)", text, re.MULTILINE)
    assert first is not None
    assert first.group(1) == package_version()
