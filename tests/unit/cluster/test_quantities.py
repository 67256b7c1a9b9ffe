"""Kubernetes quantities as exact millicores and bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.cluster.quantities import parse_quantity_bytes, parse_quantity_cpu


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("250m", 250),
        ("2", 2000),
        ("1.5", 1500),
        (".5", 500),
        ("0.1", 100),
        ("100u", 1),  # rounded up, as Kubernetes' MilliValue does
        ("1500000n", 2),
        ("2e3", 2_000_000),
        ("+4", 4000),
        (8, 8000),
        (0.25, 250),
    ],
)
def test_cpu_quantities_become_millicores(text: str | int | float, millis: int) -> None:
    assert parse_quantity_cpu(text) == millis


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1Ki", 1024),
        ("31458956Ki", 31458956 * 1024),
        ("512Mi", 512 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("2Ti", 2 * 2**40),
        ("1Pi", 2**50),
        ("1k", 1000),
        ("129M", 129_000_000),
        ("1G", 10**9),
        ("1T", 10**12),
        ("1E", 10**18),
        ("129e6", 129_000_000),
        ("1E3", 1000),
        ("500m", 1),  # a fraction of a byte rounds up
        ("0", 0),
        (1024, 1024),
    ],
)
def test_memory_quantities_become_bytes(text: str | int, size: int) -> None:
    assert parse_quantity_bytes(text) == size


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "1KB",
        "1ki",
        "1K",
        "1.2.3",
        "--1",
        "-1",
        "1 Gi",
        "Infinity",
        "nan",
        "1e999",
        "8Ei",  # 2**63 bytes does not fit Kubernetes' int64
        "1" * 80,
        True,
        None,
        float("nan"),
        float("inf"),
        -3,
    ],
)
def test_malformed_quantities_raise_value_error(bad: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the type is the contract)
        parse_quantity_bytes(bad)
    with pytest.raises(ValueError):  # noqa: PT011
        parse_quantity_cpu(bad)


@given(st.integers(min_value=0, max_value=2**40))
def test_binary_suffixes_scale_exactly(n: int) -> None:
    assert parse_quantity_bytes(f"{n}Ki") == n * 1024
    assert parse_quantity_bytes(f"{n}Mi") == n * 2**20


@given(st.integers(min_value=0, max_value=10**12))
def test_millicore_quantities_round_trip(n: int) -> None:
    assert parse_quantity_cpu(f"{n}m") == n
    assert parse_quantity_cpu(str(n)) == n * 1000
