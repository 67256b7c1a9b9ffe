"""``GET history`` and ``GET report`` over a real history database behind the real application:
series with their coverage, gaps left as gaps, the report's figures and method, and the 400s."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from reporter.history.instruments import parse_instruments
from reporter.history.samples import Coverage, Kind, Sample
from reporter.history.store import HistoryStore
from reporter.settings import ReporterSettings
from tests.unit.reporter.cluster import NOW
from tests.unit.reporter.conftest import Client, ClientFactory
from tests.unit.reporter.contract import call

API = "/api/v1/sustainability"
HOUR = timedelta(hours=1)
DAY_START = NOW.replace(hour=0)


def region(hour: int, name: str, *, wh: float, grams: float | None, coverage: Coverage) -> Sample:
    intensity = grams / (wh / 1000) if grams is not None else None
    return Sample(
        DAY_START + hour * HOUR,
        Kind.REGION,
        name,
        members=2,
        energy_wh=wh,
        grams=grams,
        coverage=coverage,
        intensity=intensity,
        source="electricitymaps" if coverage is Coverage.LIVE else "static",
        pue=1.135,
    )


def replicas(hour: int, *, grams: float, baseline: float) -> Sample:
    return Sample(
        DAY_START + hour * HOUR,
        Kind.REPLICAS,
        "read-replicas",
        members=3,
        energy_wh=100.0,
        grams=grams,
        coverage=Coverage.LIVE,
        baseline_grams=baseline,
        placement={"us-west-2": 3},
    )


# Hours 1-3 of the day (hour 2 not recorded at all), then the recorder's own sample at noon.
SAMPLES = [
    region(1, "us-west-2", wh=1000, grams=100.0, coverage=Coverage.LIVE),
    region(1, "eu-west-1", wh=2000, grams=600.0, coverage=Coverage.STATIC),
    region(3, "us-west-2", wh=1000, grams=120.0, coverage=Coverage.LIVE),
    region(3, "eu-west-1", wh=2000, grams=None, coverage=Coverage.MISSING),
    Sample(DAY_START + HOUR, Kind.ROLE, "validator", 1, 3000.0, 700.0, Coverage.STATIC),
    Sample(DAY_START + HOUR, Kind.CLUSTER, "cluster", 4, 3000.0, 700.0, Coverage.STATIC),
    Sample(DAY_START + 3 * HOUR, Kind.CLUSTER, "cluster", 4, 3000.0, 120.0, Coverage.MISSING),
    replicas(1, grams=30.0, baseline=50.0),
    replicas(3, grams=36.0, baseline=60.0),
]


@pytest.fixture
async def client(reporter_client: ClientFactory, location: str) -> Client:
    seeded = HistoryStore.open(location)
    await seeded.migrate()
    await seeded.record(SAMPLES)
    await seeded.close()
    return await reporter_client(history=HistoryStore.open(location))


def until_noon(step: str = "hour") -> str:
    return f"from={DAY_START:%Y-%m-%dT%H:%M:%SZ}&to=2026-11-26T12:00:00Z&step={step}"


async def test_the_cluster_series_has_a_point_per_hour_and_keeps_the_gap(client: Client) -> None:
    status, body = await call(client, f"{API}/history?{until_noon()}")
    assert status == 200
    assert body["subject"] == {"kind": "cluster", "name": None}
    points = body["points"]
    assert len(points) == 12
    one, two, three = points[1], points[2], points[3]
    assert one["energyKWh"] == 3.0
    assert one["kgCO2eq"] == 0.7
    assert one["coverage"] == {"live": 0, "stale": 0, "static": 1, "missing": 0}
    assert two["energyKWh"] is None
    assert two["kgCO2eq"] is None
    assert two["coverage"] == {"live": 0, "stale": 0, "static": 0, "missing": 1}
    # Hour 3: eu-west-1 had no intensity, so its emissions are unknown and the hour is missing.
    assert three["kgCO2eq"] == 0.12
    assert three["coverage"]["missing"] == 1
    assert one["readReplicas"] == {
        "energyKWh": 0.1,
        "kgCO2eq": 0.03,
        "baselineKgCO2eq": 0.05,
        "savingsKgCO2eq": 0.02,
        "savingsPercent": 40.0,
    }
    assert body["readReplicaBaseline"] == "even spread over eligible regions"


async def test_a_daily_point_adds_up_its_hours_and_counts_their_coverage(client: Client) -> None:
    status, body = await call(client, f"{API}/history?{until_noon('day')}")
    assert status == 200
    (day,) = body["points"]
    assert day["hours"] == 12
    assert day["energyKWh"] == 6.0
    assert day["kgCO2eq"] == 0.82
    assert day["coverage"] == {"live": 0, "stale": 0, "static": 1, "missing": 11}
    assert day["readReplicas"]["savingsPercent"] == 40.0


async def test_one_region_or_one_role_has_its_own_series(client: Client) -> None:
    _, oregon = await call(client, f"{API}/history?{until_noon()}&region=us-west-2")
    assert oregon["subject"] == {"kind": "region", "name": "us-west-2"}
    assert [p["kgCO2eq"] for p in oregon["points"][:4]] == [None, 0.1, None, 0.12]
    assert oregon["points"][0]["readReplicas"] is None
    assert oregon["points"][1]["carbonIntensity"] == 100.0
    _, validators = await call(client, f"{API}/history?{until_noon()}&role=validator")
    assert validators["points"][1]["energyKWh"] == 3.0


async def test_the_default_history_is_the_last_24_hours_up_to_the_current_one(
    client: Client,
) -> None:
    status, body = await call(client, f"{API}/history")
    assert status == 200
    assert body["from"] == "2026-11-25T13:00:00Z"
    assert body["to"] == "2026-11-26T13:00:00Z"
    assert len(body["points"]) == 24


async def test_the_report_states_figures_coverage_and_method(client: Client) -> None:
    status, report = await call(client, f"{API}/report?{until_noon()}")
    assert status == 200
    assert report["estimate"] is True
    assert report["hours"] == 12
    assert report["totals"]["energyKWh"] == 6.0
    assert report["totals"]["locationKgCO2eq"] == 0.82
    assert report["totals"]["coverage"] == {"live": 0, "stale": 0, "static": 1, "missing": 11}
    rows = {r["region"]: r for r in report["regions"]}
    assert rows["us-west-2"]["locationKgCO2eq"] == 0.22
    assert rows["us-west-2"]["coverage"] == {"live": 2, "stale": 0, "static": 0, "missing": 10}
    assert rows["eu-west-1"]["intensitySources"] == ["static"]
    replica_part = report["readReplicas"]
    assert replica_part["locationKgCO2eq"] == 0.066
    assert replica_part["baselineKgCO2eq"] == 0.11
    assert replica_part["savingsKgCO2eq"] == 0.044
    assert replica_part["baseline"] == "even spread over eligible regions"
    assert replica_part["replicaHoursByRegion"] == {"us-west-2": 6}
    method = report["method"]
    assert method["scope2Method"] == "location-based"
    assert method["gridIntensity"]["providerChain"] == ["mock", "static"]
    assert method["footprintModel"]["coefficients"]["aws"]["maxWattsPerVcpu"] == 3.5
    assert rows["us-west-2"]["marketBased"] is None


async def test_the_csv_report_carries_its_method_and_one_row_per_subject(client: Client) -> None:
    response = await client.get(f"{API}/report?{until_noon()}&format=csv")
    assert response.status == 200
    assert response.content_type == "text/csv"
    text = await response.text()
    preamble = [line for line in text.splitlines() if line.startswith("#")]
    assert any("location-based" in line for line in preamble)
    assert any("coefficients aws: 0.74-3.5 W per vCPU" in line for line in preamble)
    rows = list(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))
    by_subject = {(r["section"], r["subject"]): r for r in rows}
    assert by_subject[("region", "us-west-2")]["location_kgco2eq"] == "0.22"
    assert by_subject[("region", "us-west-2")]["market_kgco2eq"] == ""
    assert by_subject[("read-replicas", "read-replicas")]["baseline_kgco2eq"] == "0.11"
    assert by_subject[("total", "cluster")]["missing_hours"] == "11"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("from=2026-11-26T10:00:00Z&to=2026-11-26T09:00:00Z", "from"),
        ("from=2025-01-01", "from"),
        ("from=yesterday", "from"),
        ("from=2026-11-26T10:00:00", "from"),
        ("to=2026-13-01", "to"),
        ("to=2026-11-27T00:00:00Z", "to"),
        ("step=week", "step"),
        ("region=us-west-2&role=validator", "role"),
        ("role=captain", "role"),
        ("step=hour&step=day", "step"),
    ],
)
async def test_a_bad_range_or_filter_is_a_400_naming_the_parameter(
    client: Client, query: str, parameter: str
) -> None:
    status, body = await call(client, f"{API}/history?{query}")
    assert status == 400
    assert body["error"]["parameter"] == parameter


async def test_the_report_refuses_an_unknown_format(client: Client) -> None:
    status, body = await call(client, f"{API}/report?format=pdf")
    assert status == 400
    assert body["error"]["parameter"] == "format"


async def test_without_a_history_the_endpoints_answer_503(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/history")
    assert status == 503
    assert body["error"]["code"] == "history_unavailable"


async def test_the_recorder_samples_the_current_hour_when_the_reporter_starts(
    reporter_client: ClientFactory, tmp_path: Path
) -> None:
    client = await reporter_client(
        history=HistoryStore.open(str(tmp_path / "history.db")),
        settings=ReporterSettings(history_retention_days=30),
    )
    async with asyncio.timeout(10):
        # Polls the health endpoint until the recorder reports its first hour.
        while True:
            _, health = await call(client, f"{API}/health")
            (check,) = [c for c in health["checks"] if c["name"] == "history"]
            if check["details"]["lastRecordedHour"] is not None:
                break
            await asyncio.sleep(0.02)
    assert check["status"] == "ok"
    assert check["details"]["lastRecordedHour"] == "2026-11-26T12:00:00Z"
    _, body = await call(client, f"{API}/history?region=us-west-2")
    assert body["points"][-1]["coverage"]["live"] == 1


async def test_declared_instruments_add_a_market_based_column_beside_the_location_based_one(
    reporter_client: ClientFactory, location: str
) -> None:
    seeded = HistoryStore.open(location)
    await seeded.migrate()
    await seeded.record(SAMPLES)
    await seeded.close()
    declared = parse_instruments(
        {
            "instruments": [
                {
                    "region": "us-west-2",
                    "kind": "supplier",
                    "source": "utility disclosure 2026",
                    "validFrom": "2026-01-01",
                    "validTo": "2026-12-31",
                    "gramsPerKwh": 50,
                }
            ]
        },
        "test",
    )
    client = await reporter_client(history=HistoryStore.open(location), instruments=declared)
    _, report = await call(client, f"{API}/report?{until_noon()}")
    rows = {r["region"]: r for r in report["regions"]}
    assert rows["us-west-2"]["marketBased"]["kgCO2eq"] == 0.1
    assert rows["us-west-2"]["marketBased"]["supplierKWh"] == 2.0
    assert rows["us-west-2"]["locationKgCO2eq"] == 0.22
    assert rows["eu-west-1"]["marketBased"] is None
    assert report["totals"]["locationKgCO2eq"] == 0.82
    response = await client.get(f"{API}/report?{until_noon()}&format=csv")
    text = await response.text()
    rows_csv = list(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))
    oregon = next(r for r in rows_csv if r["subject"] == "us-west-2")
    assert oregon["market_kgco2eq"] == "0.1"
    assert oregon["location_kgco2eq"] == "0.22"
