"""``make screenshot``: docs/dashboard.png, the dashboard of a reporter on mock data.

Starts ``python -m reporter`` on the built-in mock provider and the demo cluster on a free
loopback port, waits for its health, has headless Chromium take the screenshot and stops it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tools.browser import screenshot


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
    port = _free_port()
    env = dict(os.environ)
    env.update(
        STELLAR_CARBON_PROVIDERS="mock,static",
        STELLAR_CARBON_REPORTER_INVENTORY="demo",
        STELLAR_CARBON_REPORTER_HOST="127.0.0.1",
        STELLAR_CARBON_REPORTER_PORT=str(port),
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
        screenshot(f"{base}/", args.output)
    finally:
        reporter.terminate()
        reporter.wait(timeout=30)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
