"""Our services as real local processes, and their logs in the reports of failed tests.

``LocalService`` runs ``python -m <module>`` in its own process group with its output in a log
file, scrubbed of whatever in the developer's shell would point it elsewhere. The processes and
their readiness polling are synchronous: module-scoped fixtures and ``tools.demo`` have no event
loop to share.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Final, Protocol

import pytest

from tests.e2e.cluster import ApiStatusError
from tests.e2e.process_group import log_tail, own_group_dying_with_parent

REPO: Final = Path(__file__).resolve().parents[2]

_POLL_SECONDS: Final = 0.2
# Variables of the developer's shell that would steer a service elsewhere than where the test
# points it: in-cluster detection, another kubeconfig, settings of a locally running service.
_SCRUBBED_PREFIXES: Final = ("STELLAR_CARBON_", "KUBERNETES_SERVICE_")
_SCRUBBED: Final = frozenset({"KUBECONFIG", "POD_NAMESPACE"})


class ServiceError(Exception):
    """A local service exited, or did not become ready in time; the message ends with its log."""


def service_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The current environment minus anything that would point a service elsewhere, plus
    ``overrides``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SCRUBBED and not key.startswith(_SCRUBBED_PREFIXES)
    }
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(overrides)
    return env


class LocalService:
    """``python -m <module>`` with ``env``, in its own process group, logging to a file.

    Restarts append to the same log, separated by a marker line, so a failure report shows the
    whole story of the process.
    """

    def __init__(self, name: str, module: str, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.module = module
        self.env = service_environment(env)
        self.log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def __repr__(self) -> str:
        return f"LocalService({self.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            raise ServiceError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self.starts += 1
        self._log.write(f"----- start #{self.starts}: python -m {self.module}\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=self.env,
            preexec_fn=own_group_dying_with_parent,
        )

    def wait_until(
        self,
        what: str,
        probe: Callable[[], bool],
        *,
        timeout: float = 60.0,
    ) -> None:
        """Poll ``probe`` until it holds; raise ``ServiceError`` if the process exits or time runs
        out. Connection errors count as "not yet"."""
        deadline = time.monotonic() + timeout
        last = "not ready"
        while True:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise ServiceError(
                    f"{self.name} exited with code {code} while waiting for {what}\n"
                    f"{self.log_tail()}"
                )
            try:
                if probe():
                    return
                last = "not yet"
            except (OSError, ValueError, ssl.SSLError, ApiStatusError) as e:
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name}: {what} not reached after {timeout:.0f}s ({last})\n"
                    f"{self.log_tail()}"
                )
            time.sleep(_POLL_SECONDS)

    def kill(self) -> None:
        """SIGKILL the whole process group, as an OOM kill or a node loss would."""
        self._signal(signal.SIGKILL)
        if self._process is not None:
            self._process.wait()

    def signal_stop(self) -> None:
        """SIGTERM, as the kubelet sends it once, without waiting for the exit."""
        self._signal(signal.SIGTERM)

    def wait_stopped(self, grace: float = 10.0) -> None:
        """Wait ``grace`` seconds for the process to exit, then SIGKILL it."""
        process = self._process
        if process is not None and process.poll() is None:
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; idempotent."""
        self.signal_stop()
        self.wait_stopped(grace)

    def log_tail(self, lines: int = 80) -> str:
        return f"--- {self.log_path} (last {lines} lines) ---\n{log_tail(self.log_path, lines)}"

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signum)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalService:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Logged(Protocol):
    """Something whose recent log lines explain a failure: a service, or a whole control plane."""

    @property
    def name(self) -> str: ...

    def log_tail(self) -> str: ...


class FailureLogs:
    """A pytest plugin that appends the services' log tails to every failed test's report."""

    def __init__(self, services: Sequence[Logged]) -> None:
        self._services = services

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed:
            for service in self._services:
                report.sections.append((f"{service.name} log", service.log_tail()))
        return report


@contextlib.contextmanager
def logs_on_failure(config: pytest.Config, *services: Logged) -> Iterator[None]:
    """While active, failed tests carry the tails of ``services``' logs in their reports."""
    plugin = FailureLogs(services)
    config.pluginmanager.register(plugin)
    try:
        yield
    finally:
        config.pluginmanager.unregister(plugin)
