"""``python -m bench.instructions [--payload read-pool|operator-pool] [--reviews N]``.

CPU instructions per admission, the floor against the webhook, counted by valgrind's callgrind
over the whole server process (TLS, aiohttp, parsing, the decision, the answer): unlike wall or
CPU time, the count does not move with what else the machine runs, so it tells a change to the
admission path apart from a noisy neighbour. Each server (``bench.serve``, as in
``bench.admission``) runs under callgrind; after a warm-up the counters are zeroed, ``N``
reviews are sent by 4 workers over kept-alive HTTPS, and the counters are dumped. Needs
``valgrind`` (Debian package ``valgrind``); not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench.loadgen import closed_loop
from bench.payloads import (
    OPERATOR_PODS,
    operator_read_pods,
    read_pool_pod,
    review_bodies,
    reviews_of,
)
from bench.servers import REPO, Tls, make_tls
from tests.e2e.cluster import free_port
from webhook.app import MUTATE_PATH

WARM_UP = 300
CONCURRENCY = 4


async def instructions_per_review(
    kind: str, bodies: Sequence[bytes], tls: Tls, cert_dir: Path, reviews: int
) -> int:
    """Instructions ``kind``'s server process executes per review, over ``reviews`` reviews."""
    port = free_port()
    out = cert_dir / f"callgrind-{kind}"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", sys.executable]
    command += ["-m", "bench.serve", kind, "--port", str(port), "--cert-dir", str(cert_dir)]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        json.loads(await process.stdout.readline())  # {"ready": true, ...}
        connector = aiohttp.TCPConnector(limit=CONCURRENCY, ssl=tls.client_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            url = f"https://127.0.0.1:{port}{MUTATE_PATH}"
            await closed_loop(
                session,
                url,
                bodies,
                concurrency=CONCURRENCY,
                max_requests=WARM_UP,
                max_seconds=600,
            )
            await _control("-z", process.pid)
            result = await closed_loop(
                session,
                url,
                bodies,
                concurrency=CONCURRENCY,
                max_requests=reviews,
                max_seconds=1800,
            )
            await _control("-d", process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await process.wait()
    if result.errors:
        raise RuntimeError(f"{kind}: {result.errors} of {result.requests} reviews failed")
    counted = await asyncio.to_thread(_counted, cert_dir, f"callgrind-{kind}.{process.pid}")
    return counted // result.requests


async def _control(flag: str, pid: int) -> None:
    control = await asyncio.create_subprocess_exec(
        "callgrind_control",
        flag,
        str(pid),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await control.wait()


def _counted(directory: Path, prefix: str) -> int:
    """The instructions in the dump written on ``callgrind_control -d`` (the largest total: the
    one written at exit holds only what came after it)."""
    return max(_totals(path) for path in directory.glob(f"{prefix}*"))


def _totals(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


async def run(payload: str, reviews: int) -> dict[str, int | float | str]:
    bodies = (
        review_bodies(read_pool_pod(), 64)
        if payload == "read-pool"
        else reviews_of(operator_read_pods(OPERATOR_PODS))
    )
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as directory:
        cert_dir = Path(directory)
        tls = make_tls(cert_dir)
        floor = await instructions_per_review("floor", bodies, tls, cert_dir, reviews)
        webhook = await instructions_per_review("webhook", bodies, tls, cert_dir, reviews)
    return {
        "payload": payload,
        "reviews": reviews,
        "floor_instructions": floor,
        "webhook_instructions": webhook,
        "floor_over_webhook": round(floor / webhook, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("--payload", choices=("read-pool", "operator-pool"), default="read-pool")
    parser.add_argument("--reviews", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.payload, args.reviews))))


if __name__ == "__main__":
    main()
