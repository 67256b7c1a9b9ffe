"""The process wiring: ``serve`` on loopback with the demo inventory, mock data and cert files."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from shared.settings import CarbonSettings
from webhook.__main__ import main, serve
from webhook.certs import KeyPair
from webhook.review import decode_patch
from webhook.settings import InventorySource, WebhookSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "admissionreview-read-replica.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


def _settings(cert_dir: Path, serving: KeyPair, *, shutdown_delay: float) -> WebhookSettings:
    (cert_dir / "tls.crt").write_bytes(serving.cert_pem)
    (cert_dir / "tls.key").write_bytes(serving.key_pem)
    return WebhookSettings(
        port=free_port(),
        health_port=free_port(),
        bind_address="127.0.0.1",
        cert_dir=str(cert_dir),
        inventory=InventorySource.DEMO,
        shutdown_delay=shutdown_delay,
        shutdown_timeout=1.0,
    )


async def _until_ready(
    session: aiohttp.ClientSession, settings: WebhookSettings, task: asyncio.Task[None]
) -> None:
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{settings.health_port}/readyz") as response:
                # Ready speaks for the carbon data and the inventory; the HTTPS site opens a
                # moment later, so wait for both.
                if response.status == 200 and await _accepts(settings.port):
                    return
        except aiohttp.ClientConnectionError:
            pass
        assert not task.done(), "serve() ended before becoming ready"
        await asyncio.sleep(0.05)


async def test_the_service_starts_serves_and_stops(
    tmp_path: Path, serving: KeyPair, client_ssl: ssl.SSLContext
) -> None:
    settings = _settings(tmp_path, serving, shutdown_delay=0.0)
    stopping = asyncio.Event()
    task = asyncio.create_task(
        serve(settings, CarbonSettings(providers=("mock", "static")), stopping=stopping)
    )
    health = f"http://127.0.0.1:{settings.health_port}"
    mutate = f"https://127.0.0.1:{settings.port}/mutate?timeout=2s"
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as session,
            asyncio.timeout(30),
        ):
            await _until_ready(session, settings, task)
            async with session.post(mutate, data=EXAMPLE.read_bytes()) as response:
                assert response.status == 200
                body = await response.json()
            async with session.get(f"{health}/metrics") as response:
                metrics = await response.text()
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)

    assert body["response"]["uid"] == json.loads(EXAMPLE.read_text())["request"]["uid"]
    assert decode_patch(body)[0]["path"] == "/spec/affinity"
    assert 'stellar_carbon_webhook_admissions_total{outcome="mutated"} 1.0' in metrics


async def test_after_the_signal_a_replica_drains_unready_still_answering_until_signalled_again(
    tmp_path: Path, serving: KeyPair, client_ssl: ssl.SSLContext
) -> None:
    settings = _settings(tmp_path, serving, shutdown_delay=60.0)
    stopping = asyncio.Event()
    task = asyncio.create_task(
        serve(settings, CarbonSettings(providers=("mock", "static")), stopping=stopping)
    )
    health = f"http://127.0.0.1:{settings.health_port}"
    mutate = f"https://127.0.0.1:{settings.port}/mutate?timeout=2s"
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl)) as session,
            asyncio.timeout(30),
        ):
            await _until_ready(session, settings, task)
            async with session.post(mutate, data=EXAMPLE.read_bytes()) as response:
                kept_alive = response.headers.get("Connection", "keep-alive").lower()
                await response.read()

            stopping.set()  # SIGTERM
            while True:
                async with session.get(f"{health}/readyz") as response:
                    if response.status == 503:
                        unready = await response.json()
                        break
                await asyncio.sleep(0.05)
            async with session.post(mutate, data=EXAMPLE.read_bytes()) as response:
                draining = (response.status, response.headers.get("Connection", "").lower())
                body = await response.json()
            assert not task.done()

            stopping.set()  # a second signal
            await asyncio.wait_for(task, 10)
    finally:
        stopping.set()
        if not task.done():
            task.cancel()

    assert kept_alive == "keep-alive"
    assert "shutting down" in json.dumps(unready)
    assert draining == (200, "close")
    assert decode_patch(body)[0]["path"] == "/spec/affinity"
    assert not await _accepts(settings.port)


def test_bad_settings_exit_with_code_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STELLAR_CARBON_WEBHOOK_PORT", "https")

    with pytest.raises(SystemExit) as exited:
        main()

    assert exited.value.code == 2
    assert (
        "STELLAR_CARBON_WEBHOOK_PORT: expected a port 1-65535, got 'https'"
        in capsys.readouterr().err
    )


async def test_dev_certificates_serve_localhost_to_a_verifying_client(tmp_path: Path) -> None:
    from webhook.devcert import main as devcert
    from webhook.tls import CertificateFiles, server_context

    assert devcert([str(tmp_path / "certs")]) == 0
    context = server_context()
    CertificateFiles(context, tmp_path / "certs", interval=60).load()
    server = TestServer(aiohttp.web.Application())
    await server.start_server(ssl=context)
    client = ssl.create_default_context(cafile=str(tmp_path / "certs" / "ca.crt"))
    try:
        for host in ("localhost", "127.0.0.1"):
            _, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=client, server_hostname=host
            )
            writer.close()
            await writer.wait_closed()
    finally:
        await server.close()
    assert (tmp_path / "certs" / "tls.key").stat().st_mode & 0o077 == 0
