"""Starting ``bench.serve`` subprocesses and reading their cost from ``/proc``.

Also generates the TLS material every HTTPS server here uses: a CA and a serving certificate for
127.0.0.1, made with the webhook's own certificate code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bench.serve import CERT_FILE, KEY_FILE
from tests.e2e.cluster import free_port
from webhook.certs import generate_ca, issue_serving

REPO = Path(__file__).resolve().parent.parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Tls:
    """A CA, and a serving pair for 127.0.0.1 written where the servers read it."""

    directory: Path
    ca_pem: bytes

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def make_tls(directory: Path) -> Tls:
    now = datetime.now(UTC)
    ca = generate_ca(common_name="stellar-carbon-bench-ca", now=now, days=2)
    pair = issue_serving(ca, dns_names=["localhost"], ip_addresses=["127.0.0.1"], now=now, days=1)
    (directory / CERT_FILE).write_bytes(pair.cert_pem)
    key_path = directory / KEY_FILE
    key_path.write_bytes(pair.key_pem)
    key_path.chmod(0o600)
    return Tls(directory, ca.cert_pem)


@dataclass
class Server:
    kind: str
    process: asyncio.subprocess.Process
    port: int
    log: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str, *, tls: bool = False) -> str:
        return f"{'https' if tls else 'http'}://127.0.0.1:{self.port}{path}"

    def rss_mb(self) -> float:
        """Resident set size now, MiB (``VmRSS``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far."""
        return cpu_seconds(self.pid)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@contextlib.asynccontextmanager
async def running(
    kind: str,
    arguments: Sequence[str] = (),
    *,
    cpu: int | None = None,
    host: str = "127.0.0.1",
    timeout: float = 120.0,  # noqa: ASYNC109 - startup of a 5,000-node server on a busy machine
) -> AsyncIterator[Server]:
    """A ``bench.serve`` process listening on ``host``, ready to serve; stopped on exit."""
    port = free_port(host)
    command = [sys.executable, "-m", "bench.serve", kind, "--port", str(port), "--host", host]
    command += arguments
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    log, stderr = _log_file(kind)
    try:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    finally:
        stderr.close()
    server = Server(kind, process, port, log)
    try:
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        if not line:
            await server.stop()
            raise RuntimeError(f"{kind} server did not start:\n{_tail(log)}")
        server.info = json.loads(line)
        yield server
    finally:
        await server.stop()
        _remove(log)


def _log_file(kind: str) -> tuple[Path, IO[bytes]]:
    """A fresh file for a server's stderr (kept only while it runs, shown if it fails)."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - handed to the child, closed after
        prefix=f"bench-{kind}-", suffix=".log", delete=False
    )
    return Path(handle.name), handle


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def _remove(log: Path) -> None:
    log.unlink(missing_ok=True)


def usable_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


@contextlib.contextmanager
def pinned(cpu: int | None) -> Any:
    """Pin this process to ``cpu`` for the block (no-op when None)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
