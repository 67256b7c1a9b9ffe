"""The wheel on its own: both console scripts start from a fresh venv and answer their health
endpoints on mock data and the demo inventory, the webhook over real TLS from a local CA."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import REPO

READY_WITHIN = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without its stellar-carbon settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STELLAR_CARBON_")}
    return env | {"STELLAR_CARBON_PROVIDERS": "mock,static", **settings}


def answers(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Service:
    """A console script of the installed wheel, run from an empty directory, stopped by SIGTERM."""

    def __init__(self, script: Path, env: dict[str, str], workdir: Path) -> None:
        self.log = workdir / f"{script.name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(script)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_until(self, url: str, context: ssl.SSLContext | None = None) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"exited with {self.process.returncode}:\n{self.tail()}")
            if answers(url, context):
                return
            time.sleep(0.2)
        pytest.fail(f"{url} did not answer within {READY_WITHIN:.0f} s:\n{self.tail()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop()


def test_the_installed_webhook_serves_health_and_admission_reviews(
    installed: Path, workdir: Path, services: list[Service]
) -> None:
    certs = workdir / "certs"
    subprocess.run(
        [str(installed / "python"), "-m", "webhook.devcert", str(certs)],
        check=True, cwd=workdir, env=clean_env(), capture_output=True,
    )  # fmt: skip
    port, health = free_port(), free_port()
    webhook = Service(
        installed / "stellar-carbon-webhook",
        clean_env(
            STELLAR_CARBON_WEBHOOK_INVENTORY="demo",
            STELLAR_CARBON_WEBHOOK_TLS_MODE="files",
            STELLAR_CARBON_WEBHOOK_CERT_DIR=str(certs),
            STELLAR_CARBON_WEBHOOK_BIND_ADDRESS="127.0.0.1",
            STELLAR_CARBON_WEBHOOK_PORT=str(port),
            STELLAR_CARBON_WEBHOOK_HEALTH_PORT=str(health),
        ),
        workdir,
    )
    services.append(webhook)
    webhook.wait_until(f"http://127.0.0.1:{health}/readyz")
    assert answers(f"http://127.0.0.1:{health}/healthz")

    context = ssl.create_default_context(cafile=certs / "ca.crt")
    request = urllib.request.Request(
        f"https://localhost:{port}/mutate",
        data=(REPO / "examples" / "admissionreview-read-replica.json").read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        review = json.load(response)
    assert review["response"]["allowed"] is True
    assert review["response"]["patchType"] == "JSONPatch"

    assert webhook.stop() == 0, webhook.tail()


def test_the_installed_reporter_serves_its_health_endpoint(
    installed: Path, workdir: Path, services: list[Service]
) -> None:
    port = free_port()
    reporter = Service(
        installed / "stellar-carbon-reporter",
        clean_env(
            STELLAR_CARBON_REPORTER_INVENTORY="demo",
            STELLAR_CARBON_REPORTER_HOST="127.0.0.1",
            STELLAR_CARBON_REPORTER_PORT=str(port),
            STELLAR_CARBON_REPORTER_HISTORY_URL=str(workdir / "history.db"),
        ),
        workdir,
    )
    services.append(reporter)
    base = f"http://127.0.0.1:{port}/api/v1/sustainability"
    reporter.wait_until(f"{base}/health")
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        metrics = json.load(response)
    assert metrics["nodes"] == 38

    assert reporter.stop() == 0, reporter.tail()
