"""The history benchmark's synthetic data: shaped like the recorder's, with real gaps."""

from __future__ import annotations

from pathlib import Path

from bench.history import REGIONS, ROLES, fill, on_disk_mb, synthetic_hours
from bench.results import markdown
from reporter.history.samples import Kind


def test_a_synthetic_hour_has_every_region_role_the_cluster_and_the_replicas() -> None:
    (day,) = synthetic_hours(1)
    hours = {s.hour for s in day}
    assert len(day) == len(hours) * (REGIONS + len(ROLES) + 2)
    assert {s.kind for s in day} == set(Kind)


def test_some_synthetic_hours_are_gaps_never_written() -> None:
    written = sum(len({s.hour for s in day}) for day in synthetic_hours(60))
    assert 0 < 60 * 24 - written < 60 * 24 * 0.02


async def test_filling_a_history_file_writes_every_sample_once(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    expected = sum(len(day) for day in synthetic_hours(2))
    written, _ = await fill(path, 2)
    assert written == expected
    again, _ = await fill(path, 2)
    assert again == 0
    assert on_disk_mb(path) > 0


def test_the_results_page_renders_the_history_part() -> None:
    row = {
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "throughput_per_s": 500.0,
        "server_cpu_ms_per_request": 0.75,
    }
    target = {"target": "<= 50 ms", "value": 2.0, "met": True}
    result = {
        "disk": {"year_mb": 100.0, "year_basis": "measured", "samples": 10, "write_seconds": 1},
        "latency": {"history_cluster_hourly": row},
        "recording": {"nodes": 5000, "cpu_ms_max": 60, "wall_ms_max": 90, "samples_per_hour": 40},
        "targets": {"history p99": target},
        "load_average_at_end": 1.5,
    }
    page = markdown({"parts": {"history": {"mode": "quick", "result": result}}})
    assert "## History" in page
    assert "| history_cluster_hourly | 1.000 | 2.000 | 500 | 0.750 |" in page
