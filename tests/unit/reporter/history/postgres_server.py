"""A throwaway PostgreSQL server on a free loopback port, from the binaries the ``pgserver`` dev
dependency ships: no root, no system package, the same server on every machine.

``STELLAR_CARBON_TEST_POSTGRES_BIN`` names another directory holding ``initdb`` and ``postgres``.
PostgreSQL refuses to run as root; under root (a container) the server runs as ``nobody`` in a
directory handed to that user.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

_UNPRIVILEGED = "nobody"


def postgres_bin() -> Path:
    configured = os.environ.get("STELLAR_CARBON_TEST_POSTGRES_BIN")
    if configured:
        found = Path(configured)
    else:
        # Located, not imported: importing pgserver warns about its runtime directory.
        spec = importlib.util.find_spec("pgserver")
        if spec is None or not spec.submodule_search_locations:
            pytest.fail(
                "no PostgreSQL: these tests start the one the pgserver package ships, and it is "
                "not installed; `make check` installs it with the dev extra (pip install -e "
                "'.[dev]'), or set STELLAR_CARBON_TEST_POSTGRES_BIN to a directory with initdb "
                "and postgres"
            )
        found = Path(spec.submodule_search_locations[0], "pginstall", "bin")
    for tool in ("initdb", "postgres"):
        if not os.access(found / tool, os.X_OK):
            pytest.fail(f"no executable {tool} in {found}")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """initdb into a fresh directory, then ``postgres`` on 127.0.0.1 with trust auth, no fsync."""

    def __init__(self) -> None:
        binaries = postgres_bin()
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._root = Path(tempfile.mkdtemp(prefix="stellar-carbon-postgres-"))
        user = _UNPRIVILEGED if os.geteuid() == 0 else None
        if user is not None:
            shutil.chown(self._root, user)
        data = self._root / "data"
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--no-sync", "-E", "UTF8", "--no-instructions"],
            check=True, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._log = self._root / "postgres.log"
        with self._log.open("wb") as log:
            if user is not None:
                shutil.chown(self._log, user)
            self._process = subprocess.Popen(
                [str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                 "-p", str(self.port), "-k", str(self._root), "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                user=user, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self._log.read_text(errors="replace")[-2000:]
                self.stop()
                pytest.fail(f"postgres exited with {self._process.returncode}:\n{tail}")
            if "ready to accept connections" in self._log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail("postgres was not ready within 30 s")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # SIGTERM: PostgreSQL's smart shutdown
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._root, ignore_errors=True)
