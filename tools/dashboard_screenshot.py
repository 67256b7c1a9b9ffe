"""``make screenshot``: docs/dashboard.png, the dashboard of a reporter on mock data.

Seeds three days of demo history (hourly cluster and read-replica samples) in a temporary SQLite
file, starts ``python -m reporter`` on it, the built-in mock provider and the demo cluster on a
free loopback port, waits for its health, has headless Chromium take the screenshot and stops it.
The browser tests seed the same history.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from reporter.history.samples import CLUSTER, READ_REPLICAS, Coverage, Kind, Sample, hour_of
from reporter.history.store import HistoryStore
from tools.browser import screenshot

HISTORY_HOURS = 72
"""Hours of demo history seeded before the reporter starts: the last day and week have samples."""


async def seed_history(path: Path, now: datetime) -> None:
    """Hourly cluster and read-replica samples for the ``HISTORY_HOURS`` before ``now``'s hour,
    written through the reporter's own store (the recorder adds the current hour itself)."""
    store = HistoryStore.open(str(path))
    try:
        await store.migrate()
        current = hour_of(now)
        for back in range(1, HISTORY_HOURS + 1):
            hour = current - timedelta(hours=back)
            grams = 400.0 + 5 * (back % 24)
            await store.record(
                [
                    Sample(hour, Kind.CLUSTER, CLUSTER, 38, 1200.0, grams, Coverage.LIVE),
                    Sample(hour, Kind.REPLICAS, READ_REPLICAS, 4, 12.0, 4.0, Coverage.LIVE,
                           baseline_grams=6.0, placement={"us-west-2": 4}),
                ]
            )  # fmt: skip
    finally:
        await store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(prog="make screenshot", description=__doc__)
    parser.add_argument("output", nargs="?", default="docs/dashboard.png", type=Path)
    args = parser.parse_args()
    with TemporaryDirectory(prefix="stellar-carbon-screenshot-") as work:
        return _shoot(args.output, Path(work) / "history.db")


def _shoot(output: Path, history: Path) -> int:
    asyncio.run(seed_history(history, datetime.now(UTC)))
    port = _free_port()
    env = dict(os.environ)
    env.update(
        STELLAR_CARBON_PROVIDERS="mock,static",
        STELLAR_CARBON_REPORTER_INVENTORY="demo",
        STELLAR_CARBON_REPORTER_HOST="127.0.0.1",
        STELLAR_CARBON_REPORTER_PORT=str(port),
        STELLAR_CARBON_REPORTER_HISTORY_URL=str(history),
    )
    base = f"http://127.0.0.1:{port}"
    reporter = subprocess.Popen(
        [sys.executable, "-m", "reporter"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(f"{base}/api/v1/sustainability/health"):
            if reporter.poll() is not None or time.monotonic() > deadline:
                print("the reporter did not become healthy", file=sys.stderr)
                return 1
            time.sleep(0.2)
        screenshot(f"{base}/", output)
    finally:
        reporter.terminate()
        reporter.wait(timeout=30)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
