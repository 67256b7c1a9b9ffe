"""``make run``: both services on this machine, on built-in mock data and the demo inventory.

Starts the webhook (HTTPS 8443 with a throwaway local CA, health on 8080) and the reporter (9090)
as child processes, waits until both answer, prints what to try, and stops both on Ctrl-C.
``--inventory kubernetes`` uses the current kubeconfig instead of the demo cluster. Any
``STELLAR_CARBON_*`` variable already set (a provider chain, a token) is passed through.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

LOCAL = Path(".local")
CERTS = LOCAL / "certs"
READY = {
    "webhook": "http://127.0.0.1:8080/readyz",
    "reporter": "http://127.0.0.1:9090/api/v1/sustainability/health",
}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - fixed local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--inventory", choices=("demo", "kubernetes"), default="demo")
    parser.add_argument("--bind", default="127.0.0.1", help="address both services listen on")
    args = parser.parse_args()

    subprocess.run([sys.executable, "-m", "webhook.devcert", str(CERTS)], check=True)
    env = dict(os.environ)
    env.setdefault("STELLAR_CARBON_PROVIDERS", "mock,static")
    env.update(
        STELLAR_CARBON_WEBHOOK_INVENTORY=args.inventory,
        STELLAR_CARBON_WEBHOOK_TLS_MODE="files",
        STELLAR_CARBON_WEBHOOK_CERT_DIR=str(CERTS),
        STELLAR_CARBON_WEBHOOK_BIND_ADDRESS=args.bind,
        # No endpoints route to it here, so there is nothing to drain: Ctrl-C stops at once.
        STELLAR_CARBON_WEBHOOK_SHUTDOWN_DELAY="0",
        STELLAR_CARBON_REPORTER_INVENTORY=args.inventory,
        STELLAR_CARBON_REPORTER_HOST=args.bind,
        STELLAR_CARBON_REPORTER_HISTORY_URL=str(LOCAL / "history.db"),
    )
    children = {
        name: subprocess.Popen([sys.executable, "-m", name], env=env)
        for name in ("webhook", "reporter")
    }

    def stop(*_: object) -> None:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        deadline = time.monotonic() + 60
        pending = dict(READY)
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                if children[name].poll() is not None:
                    print(f"{name} exited with {children[name].returncode}", file=sys.stderr)
                    stop()
                    return 1
                if _answers(url):
                    del pending[name]
            time.sleep(0.3)
        if pending:
            print(f"not ready after 60 s: {', '.join(pending)}", file=sys.stderr)
        print(
            "\nstellar-carbon is running on mock data and the demo inventory. Try:\n"
            "  curl -s localhost:9090/api/v1/sustainability/metrics\n"
            "  curl -s localhost:9090/api/v1/sustainability/regions\n"
            f"  curl -s --cacert {CERTS}/ca.crt -H 'Content-Type: application/json' \\\n"
            "       --data @examples/admissionreview-read-replica.json https://localhost:8443/mutate\n"
            "Ctrl-C stops both.\n",
            flush=True,
        )
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
