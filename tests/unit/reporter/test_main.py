"""``python -m reporter`` wiring: the demo inventory on mock data serves real answers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reporter.__main__ import build_app, main, serve
from reporter.settings import ReporterSettings
from shared.core.secret import Secret
from shared.settings import CarbonSettings
from tests.unit.reporter.cluster import NOW
from tests.unit.reporter.contract import call

API = "/api/v1/sustainability"


async def test_the_demo_setup_becomes_healthy_and_reports_the_demo_cluster(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = ReporterSettings(
        inventory="demo",
        carbon=CarbonSettings(mock_clock=NOW),
        history_url=Secret(str(tmp_path / "history.db")),
    )
    client = await aiohttp_client(await build_app(settings))
    async with asyncio.timeout(20):
        # Polls the public health endpoint, exactly as a readiness probe would.
        while (await client.get(f"{API}/health")).status != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    status, body = await call(client, f"{API}/metrics")
    assert status == 200
    assert body["nodes"] > 0
    assert body["nodesWithoutIntensity"] == 0
    assert body["gCO2eqPerHour"] > 0
    status, health = await call(client, f"{API}/health")
    assert {c["name"] for c in health["checks"]} >= {"carbonData", "kubernetes", "refresh"}
    _, regions = await call(client, f"{API}/regions")
    ranked = [r for r in regions["regions"] if r["rank"] is not None]
    assert len(ranked) == regions["count"]
    first = min(ranked, key=lambda r: r["rank"])
    _, forecast = await call(client, f"{API}/forecast/{first['region']}?window=180")
    assert forecast["forecastAvailable"] is True
    assert forecast["optimalDataPoints"]


async def test_the_served_reporter_answers_unparseable_requests_with_the_json_error(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ReporterSettings(
        host="127.0.0.1",
        port=port,
        inventory="demo",
        carbon=CarbonSettings(mock_clock=NOW),
        history_url=Secret(str(tmp_path / "history.db")),
    )
    stopping = asyncio.Event()
    served = asyncio.create_task(serve(settings, stopping=stopping))
    try:
        async with asyncio.timeout(20):
            while True:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            writer.write(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            answer = await reader.read()
            writer.close()
    finally:
        stopping.set()
        await served

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] in (b"400", b"414")
    assert b"application/json" in head
    error = json.loads(body)["error"]
    assert error["message"].startswith("the request is not valid HTTP")


def test_a_bad_setting_exits_with_a_message_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STELLAR_CARBON_REPORTER_PORT", "not-a-port")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert "STELLAR_CARBON_REPORTER_PORT" in capsys.readouterr().err


def test_an_unreadable_region_override_file_stops_the_reporter_with_a_message(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    missing = tmp_path / "regions.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "reporter"],
        env={
            **os.environ,
            "STELLAR_CARBON_REPORTER_INVENTORY": "demo",
            "STELLAR_CARBON_REPORTER_PORT": str(unused_tcp_port),
            "STELLAR_CARBON_REGION_OVERRIDES": str(missing),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "regions.yaml" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_invalid_instruments_file_stops_the_reporter_with_a_message(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    instruments = tmp_path / "instruments.yaml"
    instruments.write_text(
        "instruments:\n  - {region: eu-west-1, kind: ppa, source: PPA, validFrom: 2026-01-01,"
        " validTo: 2026-12-31, gramsPerKwh: 0}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "reporter"],
        env={
            **os.environ,
            "STELLAR_CARBON_REPORTER_INVENTORY": "demo",
            "STELLAR_CARBON_REPORTER_PORT": str(unused_tcp_port),
            "STELLAR_CARBON_REPORTER_HISTORY_URL": str(tmp_path / "history.db"),
            "STELLAR_CARBON_REPORTER_INSTRUMENTS_FILE": str(instruments),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "instruments.yaml" in done.stderr
    assert "needs mwh" in done.stderr
    assert "Traceback" not in done.stderr
