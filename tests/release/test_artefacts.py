"""What ``make release`` builds: the wheel, the sdist and the chart package carry what they must."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import yaml

from tests.release.conftest import VERSION, only
from tests.tools import REPO

DATA = "shared/data/"
SHIPPED_DATA = {
    "LICENSE",
    "NOTICE",
    "README.md",
    "demo-inventory.yaml",
    "grid-profiles-2024.json",
    "gsf-cloud-region-metadata.csv",
}


def test_the_wheel_carries_the_licence_and_the_notice(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    licences = f"stellar_carbon-{VERSION}.dist-info/licenses/"
    assert {licences + "LICENSE", licences + "NOTICE"} <= names
    notice = zipfile.ZipFile(wheel).read(licences + "NOTICE").decode()
    assert "Open Database License" in notice
    assert "Cloud Region Metadata" in notice


def test_the_wheel_ships_the_data_with_its_readme_and_without_the_benchmark_replay(
    wheel: Path,
) -> None:
    data = {
        name.removeprefix(DATA)
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith(DATA) and not name.endswith(".py")
    }
    assert data == SHIPPED_DATA


def test_the_licence_and_the_notice_beside_the_data_are_the_top_level_files(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    for name in ("LICENSE", "NOTICE"):
        assert archive.read(DATA + name) == (REPO / name).read_bytes()


def test_the_wheel_names_every_console_script(wheel: Path) -> None:
    entry_points = (
        zipfile.ZipFile(wheel).read(f"stellar_carbon-{VERSION}.dist-info/entry_points.txt").decode()
    )
    for script in (
        "stellar-carbon-webhook",
        "stellar-carbon-reporter",
        "stellar-carbon-preview",
        "stellar-carbon-tiers",
        "stellar-carbon-multicluster",
    ):
        assert f"{script} = " in entry_points


def test_the_sdist_carries_the_licence_the_notice_and_the_data(dist: Path) -> None:
    sdist = only(dist, f"stellar_carbon-{VERSION}.tar.gz")
    root = f"stellar_carbon-{VERSION}/"
    with tarfile.open(sdist) as archive:
        names = set(archive.getnames())
    assert {root + "LICENSE", root + "NOTICE", root + "pyproject.toml"} <= names
    assert {root + DATA + name for name in SHIPPED_DATA} <= names


def test_the_chart_package_has_the_python_package_version(dist: Path) -> None:
    package = only(dist, f"stellar-carbon-{VERSION}.tgz")
    with tarfile.open(package) as archive:
        member = archive.extractfile("stellar-carbon/Chart.yaml")
        assert member is not None
        chart = yaml.safe_load(member)
        names = set(archive.getnames())
    assert chart["version"] == VERSION
    assert chart["appVersion"] == VERSION
    assert "stellar-carbon/values.schema.json" in names
    assert not any(name.startswith("stellar-carbon/ci/") for name in names)
