"""A real Kubernetes control plane on loopback for the end-to-end tests.

``ControlPlane`` runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok from
local binaries (built by ``tests/e2e/controlplane/build.sh``) on free 127.0.0.1 ports in a temporary
directory. The apiserver is the real one, so admission webhooks, defaulting and validation behave as
in production; the scheduler is the real one, so node affinity is honoured; kwok stands in for the
kubelets, keeping fake nodes Ready and moving bound pods to Running.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, TextIO

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes_asyncio import client as k8s

from tests.e2e.pki import CertificateAuthority, private_pem, write_private
from tests.e2e.process_group import log_tail, own_group_dying_with_parent

logger = logging.getLogger(__name__)

KUBERNETES_VERSION: Final = "v1.36.3"
BUILD_SCRIPT: Final = Path(__file__).resolve().parent / "controlplane" / "build.sh"
BINARIES: Final = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "descheduler",
)
KWOK_STAGES: Final = "kwok-stages.yaml"
SERVICE_CLUSTER_IP_RANGE: Final = "10.0.0.0/24"
POD_CIDR: Final = "10.244.0.0/16"
SERVICE_ACCOUNT_ISSUER: Final = "https://kubernetes.default.svc.cluster.local"
# The user the apiserver is when it proxies to an aggregated API server.
FRONT_PROXY_CLIENT: Final = "front-proxy-client"

# Shutdown grace per component; the apiserver drains requests, the others just stop. Karmada's
# aggregated apiserver would wait for the watches the Karmada API server proxies to it, which end
# only with that server; it keeps nothing but what is in etcd, so it is not waited for.
_GRACE_SECONDS: Final = {
    "kube-apiserver": 20.0,
    "etcd": 10.0,
    "karmada-aggregated-apiserver": 1.0,
}
_DEFAULT_GRACE_SECONDS: Final = 5.0
_POLL_SECONDS: Final = 0.2


class ControlPlaneError(Exception):
    """The control plane could not be built, started or reached."""


class ApiStatusError(ControlPlaneError):
    """The apiserver answered a bootstrap request with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:300]}")
        self.status = status


@dataclass(frozen=True)
class Binaries:
    """The directory holding the control-plane binaries and kwok's stage definitions."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def kwok_stages(self) -> Path:
        return self.directory / KWOK_STAGES

    def check(self) -> None:
        missing = [n for n in (*BINARIES, KWOK_STAGES) if not self.path(n).is_file()]
        if missing:
            raise ControlPlaneError(
                f"{self.directory} lacks {', '.join(missing)}; run {BUILD_SCRIPT.name}"
            )

    @classmethod
    def locate(cls) -> Binaries:
        """Binaries from ``STELLAR_CARBON_BIN``, else from build.sh (seconds when cached)."""
        configured = os.environ.get("STELLAR_CARBON_BIN")
        if configured:
            binaries = cls(Path(configured))
        else:
            done = subprocess.run(
                ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
            )
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                raise ControlPlaneError(
                    f"{BUILD_SCRIPT.name} failed ({done.returncode}):\n{done.stderr[-3000:]}"
                )
            binaries = cls(Path(lines[-1]))
        binaries.check()
        return binaries


_LISTEN_PORTS: Final = range(20000, 32768)
"""Where listening ports are picked: below the kernel's usual ephemeral range (32768 and up), so
an outgoing connection made meanwhile (the API server dialling a webhook) cannot take one first."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago, outside the ephemeral range."""
    low, _ = _ephemeral_range()
    candidates = [p for p in _LISTEN_PORTS if p < low] or list(_LISTEN_PORTS)
    for port in secrets.SystemRandom().sample(candidates, min(64, len(candidates))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        found: int = sock.getsockname()[1]
        return found


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


@dataclass
class _Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]


class Components:
    """Control-plane binaries running as children of the tests: each in its own process group
    (gone with the test process), logging to ``<workdir>/logs/<name>.log``, stopped in reverse
    start order."""

    def __init__(self, binaries: Binaries, workdir: Path, start_timeout: float) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.logs_dir = workdir / "logs"
        self.start_timeout = start_timeout
        self._started: list[_Component] = []

    def spawn(self, name: str, args: Sequence[str]) -> None:
        """Start the binary ``name`` with ``args``."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{name}.log"
        log = log_path.open("wb")
        try:
            process = subprocess.Popen(
                [str(self.binaries.path(name)), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=own_group_dying_with_parent,
            )
        except BaseException:
            log.close()
            raise
        self._started.append(_Component(name, process, log_path, log))

    def wait_for(self, what: str, probe: Callable[[], bool]) -> None:
        """Poll ``probe`` until it holds; raise ``ControlPlaneError`` with every log's tail if a
        component exits or ``start_timeout`` passes. Connection errors count as "not yet"."""
        deadline = time.monotonic() + self.start_timeout
        last_error = "not ready"
        while True:
            for component in self._started:
                code = component.process.poll()
                if code is not None:
                    raise ControlPlaneError(
                        f"{component.name} exited with code {code} while waiting for {what}\n"
                        f"{self.log_tail()}"
                    )
            try:
                if probe():
                    return
            except (OSError, http.client.HTTPException, ControlPlaneError, ValueError) as e:
                last_error = str(e)
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"{what} not ready after {self.start_timeout:.0f}s ({last_error})\n"
                    f"{self.log_tail()}"
                )
            time.sleep(_POLL_SECONDS)

    def stop(self) -> None:
        """SIGTERM each component, newest first, then SIGKILL after its grace; idempotent."""
        for component in reversed(self._started):
            process = component.process
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=_GRACE_SECONDS.get(component.name, _DEFAULT_GRACE_SECONDS))
                except subprocess.TimeoutExpired:
                    logger.warning("%s ignored SIGTERM; killing it", component.name)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            component.log.close()

    def pid(self, name: str) -> int:
        """The process id of the running component ``name``."""
        for component in self._started:
            if component.name == name and component.process.poll() is None:
                return component.process.pid
        raise ControlPlaneError(f"{name} is not running")

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of every component log, in start order."""
        return "\n".join(
            f"===== {c.name} ({c.log_path}) =====\n{log_tail(c.log_path, lines)}"
            for c in self._started
        )


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback.

    Use as a context manager, or call ``start()`` and ``stop()``. The admin identity is a bearer
    token in ``system:masters``; ``kubeconfig_path`` points at a kubeconfig using it.

    Several control planes can share one etcd: give the others the first one's ``etcd_url`` and
    an ``etcd_prefix`` of their own. One that only serves the API (a Karmada API server) runs
    without ``pods``: no kube-scheduler and no kwok, and only the ``controllers`` asked for. The
    apiserver aggregates other API servers through its front-proxy client certificate.
    """

    def __init__(
        self,
        binaries: Binaries,
        *,
        workdir: Path | None = None,
        start_timeout: float = 180.0,
        etcd_url: str | None = None,
        etcd_prefix: str = "/registry",
        pods: bool = True,
        controllers: Sequence[str] = ("*",),
        aggregator_routing: bool = False,
    ) -> None:
        self.binaries = binaries
        # Webhooks registered by Service are then called on the Service's endpoint addresses,
        # as a cluster's network would route its ClusterIP; nothing here routes ClusterIPs.
        self.aggregator_routing = aggregator_routing
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="stellar-carbon-e2e-"))
        self.start_timeout = start_timeout
        self.token = secrets.token_urlsafe(32)
        self.ca = CertificateAuthority()
        self.front_proxy_ca = CertificateAuthority("stellar-carbon-e2e-front-proxy-ca")
        self._own_etcd = etcd_url is None
        self.pods = pods
        self.controllers = tuple(controllers)
        self.etcd_prefix = etcd_prefix
        self.ports = {"kube-apiserver": free_port()}
        if self._own_etcd:
            self.ports.update({"etcd": free_port(), "etcd-peer": free_port()})
        if pods:
            self.ports.update({"kube-scheduler": free_port(), "kwok": free_port()})
        self.etcd_url = etcd_url or f"http://127.0.0.1:{self.ports['etcd']}"
        self.server = f"https://127.0.0.1:{self.ports['kube-apiserver']}"
        self.pki_dir = self.workdir / "pki"
        self.components = Components(binaries, self.workdir, start_timeout)
        self.logs_dir = self.components.logs_dir
        self.ca_path = self.pki_dir / "ca.crt"
        self.kubeconfig_path = self.workdir / "kubeconfig"
        self.startup_seconds: float | None = None
        self._ssl = self.ca.ssl_context()
        # Loopback only: never route through a proxy configured in the environment.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self._ssl)
        )

    def __repr__(self) -> str:
        return f"ControlPlane(server={self.server!r}, workdir={str(self.workdir)!r})"

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # lifecycle

    def start(self) -> None:
        """Start every component and wait until each is ready; on failure stop and raise."""
        started = time.monotonic()
        atexit.register(self.stop)
        try:
            self._write_files()
            self._start_components()
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        self.startup_seconds = time.monotonic() - started
        logger.info("control plane up at %s in %.1fs", self.server, self.startup_seconds)

    def _start_api_server(self) -> None:
        if self._own_etcd:
            self.components.spawn("etcd", self._etcd_args())
        self.wait_for("etcd /health", self._etcd_healthy)
        self.components.spawn("kube-apiserver", self._apiserver_args())
        self.wait_for("kube-apiserver /readyz", self._apiserver_ready)

    def _start_components(self) -> None:
        """etcd and the API server, then the controllers and, with ``pods``, scheduler and kwok."""
        self._start_api_server()
        self.components.spawn("kube-controller-manager", self._controller_manager_args())
        if self.pods:
            self.components.spawn("kube-scheduler", self._scheduler_args())
            self.components.spawn("kwok", self._kwok_args())
            self.wait_for("kube-scheduler /healthz", self._scheduler_healthy)
            self.wait_for("kwok /healthz", self._kwok_healthy)
        # The service-account controller creating the default account proves the controller
        # manager runs; pods cannot be created in a namespace before its account exists.
        self.wait_for("kube-controller-manager (default ServiceAccount)", self._controllers_ready)

    def stop(self, *, keep_workdir: bool = False) -> None:
        """Stop components in reverse start order (SIGTERM, then SIGKILL); idempotent."""
        self.components.stop()
        # Only now: an interrupted stop leaves the exit hook to finish the job.
        atexit.unregister(self.stop)
        if self._own_workdir and not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def wait_for(self, what: str, probe: Callable[[], bool]) -> None:
        """Poll ``probe`` until it holds or the control plane fails (see ``Components``)."""
        self.components.wait_for(what, probe)

    # files and flags

    def _write_files(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.ca_path.parent.mkdir(parents=True, exist_ok=True)
        self.ca_path.write_bytes(self.ca.cert_pem)
        self.ca.issue(
            "kube-apiserver",
            [
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts())),
            ],
        ).write(self.pki_dir, "apiserver")
        self.ca.issue("kube-scheduler", ["127.0.0.1", "localhost"]).write(self.pki_dir, "scheduler")
        (self.pki_dir / "front-proxy-ca.crt").write_bytes(self.front_proxy_ca.cert_pem)
        self.front_proxy_ca.issue_client(FRONT_PROXY_CLIENT).write(
            self.pki_dir, "front-proxy-client"
        )
        # One RSA key signs service-account tokens (private half) and verifies them (public half).
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_private(self.pki_dir / "service-account.key", private_pem(sa_key))
        (self.pki_dir / "service-account.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        write_private(
            self.pki_dir / "tokens.csv", f'{self.token},admin,admin,"system:masters"\n'.encode()
        )
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "stellar-carbon-e2e",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_path)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "stellar-carbon-e2e",
                    "context": {"cluster": "stellar-carbon-e2e", "user": "admin"},
                }
            ],
            "current-context": "stellar-carbon-e2e",
        }
        write_private(self.kubeconfig_path, yaml.safe_dump(kubeconfig, sort_keys=False).encode())

    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        return [
            "--name=e2e",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=e2e={peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        pki = self.pki_dir
        return [
            f"--etcd-servers={self.etcd_url}",
            f"--etcd-prefix={self.etcd_prefix}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['kube-apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={self.ca_path}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki / 'service-account.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            *(["--enable-aggregator-routing=true"] if self.aggregator_routing else []),
        ]

    def _controller_manager_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig_path}",
            "--leader-elect=false",
            "--secure-port=0",
            f"--service-account-private-key-file={self.pki_dir / 'service-account.key'}",
            f"--root-ca-file={self.ca_path}",
            "--use-service-account-credentials=true",
            f"--controllers={','.join(self.controllers)}",
            f"--cluster-cidr={POD_CIDR}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--profiling=false",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig_path}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['kube-scheduler']}",
            f"--tls-cert-file={self.pki_dir / 'scheduler.crt'}",
            f"--tls-private-key-file={self.pki_dir / 'scheduler.key'}",
            "--profiling=false",
        ]

    def _kwok_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig_path}",
            f"--config={self.binaries.kwok_stages}",
            "--manage-all-nodes=true",
            f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{self.ports['kwok']}",
        ]

    # readiness probes

    def get(self, url: str, *, token: bool = False) -> tuple[int, bytes]:
        """GET ``url`` trusting this control plane's CA, as admin when ``token``; the status and
        body (also of an error status)."""
        request = urllib.request.Request(url, method="GET")
        if token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self._opener.open(request, timeout=5) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as e:
            return e.code, bytes(e.read())

    def _etcd_healthy(self) -> bool:
        status, body = self.get(f"{self.etcd_url}/health")
        return status == 200 and json.loads(body).get("health") == "true"

    def _apiserver_ready(self) -> bool:
        status, _ = self.get(f"{self.server}/readyz", token=True)
        return status == 200

    def _scheduler_healthy(self) -> bool:
        status, _ = self.get(f"https://127.0.0.1:{self.ports['kube-scheduler']}/healthz")
        return status == 200

    def _kwok_healthy(self) -> bool:
        status, _ = self.get(f"http://127.0.0.1:{self.ports['kwok']}/healthz")
        return status == 200

    def _controllers_ready(self) -> bool:
        try:
            self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        except ApiStatusError as e:
            if e.status == 404:
                return False
            raise
        return True

    # access

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """A synchronous JSON call as admin, for bootstrap work outside any event loop."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.server}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            kind = "merge-patch+json" if method == "PATCH" else "json"
            request.add_header("Content-Type", f"application/{kind}")
        try:
            with self._opener.open(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as e:
            raise ApiStatusError(method, path, e.code, e.read().decode("utf-8", "replace")) from e
        except (OSError, http.client.HTTPException) as e:
            raise ControlPlaneError(f"{method} {path} failed: {e}") from e
        return json.loads(payload) if payload else None

    def configuration(self) -> k8s.Configuration:
        """A kubernetes-asyncio configuration for the admin identity."""
        configuration = k8s.Configuration(
            host=self.server,
            api_key={"BearerToken": self.token},
            api_key_prefix={"BearerToken": "Bearer"},
        )
        configuration.ssl_ca_cert = str(self.ca_path)
        return configuration

    def pid(self, name: str) -> int:
        """The process id of a running component (``etcd``, ``kube-apiserver``, ...)."""
        return self.components.pid(name)

    # logs

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of every component log, in start order."""
        return self.components.log_tail(lines)

    def dump_logs(self, lines: int = 40, file: TextIO | None = None) -> None:
        """Print the tail of every component log (to stderr unless ``file`` is given)."""
        print(self.log_tail(lines), file=file or sys.stderr)
