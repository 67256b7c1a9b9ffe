"""Render the Helm chart with the real helm binary for the chart tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import REPO, tools_bin

CHART = REPO / "charts" / "stellar-carbon"
KUBE_VERSION = "1.36.3"
RELEASE_NAMESPACE = "stellar-carbon"

pytestmark = pytest.mark.chart


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools_bin() / "helm"), *args], capture_output=True, text=True, check=False
    )


Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def render() -> Render:
    """``render(values_file=None, **set_values)`` → the rendered objects; fails on helm errors."""

    def _render(values_file: Path | None = None, *sets: str) -> list[dict[str, Any]]:
        args = ["template", "stellar", str(CHART), "-n", RELEASE_NAMESPACE]
        args += ["--kube-version", KUBE_VERSION]
        if values_file is not None:
            args += ["-f", str(values_file)]
        for s in sets:
            args += ["--set", s]
        result = helm(*args)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


def render_error(*sets: str) -> str:
    """Render expecting failure; return helm's error text."""
    args = ["template", "stellar", str(CHART), "-n", RELEASE_NAMESPACE]
    args += ["--kube-version", KUBE_VERSION]
    for s in sets:
        args += ["--set", s]
    result = helm(*args)
    assert result.returncode != 0, "expected helm template to fail"
    return result.stderr


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
