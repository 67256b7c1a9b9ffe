"""The built artefacts ``make release`` hands to these tests, and the wheel installed on its own."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.tools import REPO


def _version() -> str:
    with (REPO / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


VERSION = _version()


@pytest.fixture(scope="session")
def dist(pytestconfig: pytest.Config) -> Path:
    directory: Path = pytestconfig.getoption("--dist").resolve()
    if not directory.is_dir():
        pytest.fail(f"--dist {directory} is not a directory; `make release` builds it")
    return directory


def only(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {dist}, found {[p.name for p in found]}"
    return found[0]


@pytest.fixture(scope="session")
def wheel(dist: Path) -> Path:
    return only(dist, f"stellar_carbon-{VERSION}-py3-none-any.whl")


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel and its dependencies only (not the source tree); its bin/."""
    venv = tmp_path_factory.mktemp("release-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         str(wheel)],
        check=True,
        cwd=venv,
    )  # fmt: skip
    return venv / "bin"
