"""Our own services as real local processes next to the end-to-end control plane.

``LocalService`` runs ``python -m webhook`` or ``python -m reporter`` in its own process group with
its output in a log file. ``LocalWebhook`` adds what the webhook needs around it: a secret
namespace, a MutatingWebhookConfiguration registered by loopback URL with an empty ``caBundle``
(the webhook's self-managed TLS fills it in) and a readiness check that does a verified TLS
handshake with the CA the webhook published. ``CarbonApiThread`` serves the fake custom carbon API
from a thread of its own, so fixtures without an event loop can own it and switch it into an
outage. ``placement_table`` renders where pods landed next to each region's intensity.

Processes, probes and the fake API are synchronous: module-scoped fixtures and ``tools.demo`` have
no event loop to share. The workload helpers (a read pool shaped like the Stellar-K8s operator's,
``serve_namespace``) are asynchronous, like the rest of the e2e Kubernetes helpers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import pytest
from aiohttp import web
from kubernetes_asyncio import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import ApiStatusError, ControlPlane, free_port
from tests.e2e.kube import as_body, mutating_webhook_configuration, wait_for_admission
from tests.e2e.pki import write_private
from tests.fakes.custom_api import FakeCustomApi

REPO: Final = Path(__file__).resolve().parents[2]
REGION_LABEL: Final = "topology.kubernetes.io/region"
WEBHOOK_NAMESPACE_LABEL: Final = "e2e.stellar.org/carbon-webhook"
"""Namespaces carrying this label (value ``enabled``) are sent to a ``LocalWebhook``."""

RANKING_ANNOTATION: Final = "stellar.org/carbon-ranking"
READ_REPLICA: Final = {"stellar.org/role": "read-replica"}
STELLAR_CORE_IMAGE: Final = "docker.io/stellar/stellar-core:22.1.0-2194.0241e79f7.focal"

_POLL_SECONDS: Final = 0.2
_MWC_PATH: Final = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
# Variables of the developer's shell that would steer a service elsewhere than where the test
# points it: in-cluster detection, another kubeconfig, settings of a locally running service.
_SCRUBBED_PREFIXES: Final = ("STELLAR_CARBON_", "KUBERNETES_SERVICE_")
_SCRUBBED: Final = frozenset({"KUBECONFIG", "POD_NAMESPACE"})


class ServiceError(Exception):
    """A local service exited, or did not become ready in time; the message ends with its log."""


# --- processes ----------------------------------------------------------------------------------

_PR_SET_PDEATHSIG: Final = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _own_group_dying_with_parent() -> None:
    # Runs between fork and exec: a group of its own lets a test SIGKILL the service without
    # touching pytest, and PDEATHSIG takes it down if pytest itself dies without cleaning up.
    os.setpgrp()
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


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


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - lines * 400))
            data = f.read()
    except OSError as e:
        return f"<unreadable: {e}>"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


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
            preexec_fn=_own_group_dying_with_parent,
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

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; idempotent."""
        process = self._process
        if process is not None and process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def log_tail(self, lines: int = 80) -> str:
        return f"--- {self.log_path} (last {lines} lines) ---\n{_tail(self.log_path, lines)}"

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


class FailureLogs:
    """A pytest plugin that appends the services' log tails to every failed test's report."""

    def __init__(self, services: Sequence[LocalService]) -> None:
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
def logs_on_failure(config: pytest.Config, *services: LocalService) -> Iterator[None]:
    """While active, failed tests carry the tails of ``services``' logs in their reports."""
    plugin = FailureLogs(services)
    config.pluginmanager.register(plugin)
    try:
        yield
    finally:
        config.pluginmanager.unregister(plugin)


# --- probes -------------------------------------------------------------------------------------

_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a plain GET on loopback (never through a proxy); HTTP errors included."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as e:
        return e.code, bytes(e.read())


def http_json(url: str) -> Any:
    """The JSON body of a GET that must answer 200."""
    status, body = http_get(url)
    if status != 200:
        raise AssertionError(f"GET {url} -> HTTP {status}: {body[:500]!r}")
    return json.loads(body)


def prometheus_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text as ``{(sample name, frozenset(labels)): value}``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def tls_handshake_verified(port: int, ca_pem: bytes, server_name: str = "127.0.0.1") -> bool:
    """A TLS handshake with 127.0.0.1:``port`` succeeds, the certificate verified against
    ``ca_pem`` for ``server_name``, exactly as the API server checks it."""
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        return True


# --- the fake carbon API in a thread -------------------------------------------------------------


class CarbonApiThread:
    """``FakeCustomApi`` served on loopback from an event loop in a background thread.

    ``outage = True`` makes every route answer HTTP 500, as an API whose backend is down would.
    """

    def __init__(self, fake: FakeCustomApi) -> None:
        self.fake = fake
        self.outage = False
        self.refused = 0
        """Requests answered 500 because of the outage."""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return self.fake.url

    @property
    def forecast_url(self) -> str:
        return self.fake.forecast_url

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-carbon-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise ServiceError("the fake carbon API did not start within 30s")
        if self._error is not None:
            raise ServiceError(f"the fake carbon API failed to start: {self._error!r}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be gone
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> CarbonApiThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # reported to start(); a thread has nowhere else to say it
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = self.fake.make_app()
        app.middlewares.append(self._outage_middleware)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.fake.base_url = f"http://{host}:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            self.fake.release()
            await runner.cleanup()

    @web.middleware
    async def _outage_middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Any],
    ) -> web.StreamResponse:
        if self.outage:
            self.refused += 1
            return web.json_response({"error": "carbon backend unavailable"}, status=500)
        response: web.StreamResponse = await handler(request)
        return response


# --- environments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarbonTimings:
    """Cache and refresh timings. The defaults are short so that outages show within seconds."""

    current_ttl: float = 2.0
    forecast_ttl: float = 2.0
    max_stale: float = 10.0
    refresh_interval: float = 1.0
    backoff_base: float = 1.0
    backoff_max: float = 2.0
    http_timeout: float = 2.0

    def env(self) -> dict[str, str]:
        return {
            "STELLAR_CARBON_CURRENT_TTL": f"{self.current_ttl:g}",
            "STELLAR_CARBON_FORECAST_TTL": f"{self.forecast_ttl:g}",
            "STELLAR_CARBON_MAX_STALE": f"{self.max_stale:g}",
            "STELLAR_CARBON_REFRESH_INTERVAL": f"{self.refresh_interval:g}",
            "STELLAR_CARBON_BACKOFF_BASE": f"{self.backoff_base:g}",
            "STELLAR_CARBON_BACKOFF_MAX": f"{self.backoff_max:g}",
            "STELLAR_CARBON_HTTP_TIMEOUT": f"{self.http_timeout:g}",
        }


def custom_api_carbon_env(
    api: CarbonApiThread, timings: CarbonTimings = CarbonTimings()
) -> dict[str, str]:
    """Carbon settings for the custom HTTP provider on ``api``, static annual averages behind."""
    return {
        "STELLAR_CARBON_PROVIDERS": "http,static",
        "STELLAR_CARBON_CUSTOM_URL": api.url,
        "STELLAR_CARBON_CUSTOM_FORECAST_URL": api.forecast_url,
        **timings.env(),
    }


def mock_carbon_env(seed: int = 0) -> dict[str, str]:
    """Carbon settings for the built-in mock provider, static annual averages behind."""
    return {"STELLAR_CARBON_PROVIDERS": "mock,static", "STELLAR_CARBON_MOCK_SEED": str(seed)}


def webhook_env(
    *,
    kubeconfig: Path,
    port: int,
    health_port: int,
    secret_name: str,
    secret_namespace: str,
    config_name: str,
    carbon: Mapping[str, str],
) -> dict[str, str]:
    """The webhook outside the cluster: nodes from ``kubeconfig``, self-managed TLS with an IP SAN
    for loopback, its CA written into ``config_name``."""
    return {
        "STELLAR_CARBON_WEBHOOK_INVENTORY": "kubernetes",
        "STELLAR_CARBON_WEBHOOK_KUBECONFIG": str(kubeconfig),
        "STELLAR_CARBON_WEBHOOK_BIND_ADDRESS": "127.0.0.1",
        "STELLAR_CARBON_WEBHOOK_PORT": str(port),
        "STELLAR_CARBON_WEBHOOK_HEALTH_PORT": str(health_port),
        "STELLAR_CARBON_WEBHOOK_TLS_MODE": "self-managed",
        "STELLAR_CARBON_WEBHOOK_EXTRA_SANS": "127.0.0.1",
        "STELLAR_CARBON_WEBHOOK_SECRET_NAME": secret_name,
        "STELLAR_CARBON_WEBHOOK_SECRET_NAMESPACE": secret_namespace,
        "STELLAR_CARBON_WEBHOOK_SERVICE_NAMESPACE": secret_namespace,
        "STELLAR_CARBON_WEBHOOK_CONFIG_NAME": config_name,
        **carbon,
    }


def reporter_env(*, kubeconfig: Path, port: int, carbon: Mapping[str, str]) -> dict[str, str]:
    """The reporter outside the cluster: nodes and pods from ``kubeconfig``, on loopback."""
    return {
        "STELLAR_CARBON_REPORTER_INVENTORY": "kubernetes",
        "KUBECONFIG": str(kubeconfig),
        "STELLAR_CARBON_REPORTER_HOST": "127.0.0.1",
        "STELLAR_CARBON_REPORTER_PORT": str(port),
        **carbon,
    }


# --- the webhook --------------------------------------------------------------------------------


def create_namespace(control_plane: ControlPlane, prefix: str) -> str:
    """A namespace with a generated name (bootstrap call, no event loop needed)."""
    created = control_plane.request(
        "POST", "/api/v1/namespaces", {"metadata": {"generateName": prefix}}
    )
    name: str = created["metadata"]["name"]
    return name


def delete_namespace(control_plane: ControlPlane, name: str) -> None:
    with contextlib.suppress(ApiStatusError):
        control_plane.request("DELETE", f"/api/v1/namespaces/{name}")


def service_account_kubeconfig(
    control_plane: ControlPlane, namespace: str, service_account: str, path: Path
) -> Path:
    """Write a kubeconfig that acts as ``namespace/service_account`` (a bound token from the
    TokenRequest API), so a local process runs with exactly the rights RBAC grants that account."""
    review = control_plane.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "e2e",
                "cluster": {
                    "server": control_plane.server,
                    "certificate-authority": str(control_plane.ca_path),
                },
            }
        ],
        "users": [{"name": service_account, "user": {"token": review["status"]["token"]}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": service_account}}],
        "current-context": "e2e",
    }
    write_private(path, json.dumps(kubeconfig).encode())
    return path


def ca_bundle_of(control_plane: ControlPlane, config_name: str) -> bytes:
    """The PEM CA bundle of the first webhook in a MutatingWebhookConfiguration (empty if unset)."""
    config = control_plane.request("GET", f"{_MWC_PATH}/{config_name}")
    encoded = (config["webhooks"][0].get("clientConfig") or {}).get("caBundle") or ""
    return base64.b64decode(encoded)


class LocalWebhook:
    """The admission webhook as a local process with self-managed TLS, registered by URL.

    ``start()`` creates a namespace for the certificate Secret, registers a
    MutatingWebhookConfiguration for ``https://127.0.0.1:PORT/mutate`` with ``failurePolicy:
    Ignore`` and an empty ``caBundle`` for namespaces labelled ``WEBHOOK_NAMESPACE_LABEL``, then
    starts the process and waits until it is ready and serves a certificate the CA it injected
    verifies. ``close()`` undoes all of it.
    """

    def __init__(
        self,
        control_plane: ControlPlane,
        *,
        name: str,
        carbon: Mapping[str, str],
        log_dir: Path,
        namespace_selector: Mapping[str, Any] | None = None,
        timeout_seconds: int = 5,
    ) -> None:
        self.control_plane = control_plane
        self.config_name = name
        self.port = free_port()
        self.health_port = free_port()
        self.secret_name = "stellar-carbon-webhook-tls"
        self._carbon = dict(carbon)
        self._log_dir = log_dir
        self._namespace_selector = namespace_selector or {
            "matchLabels": {WEBHOOK_NAMESPACE_LABEL: "enabled"}
        }
        self._timeout_seconds = timeout_seconds
        self.secret_namespace: str | None = None
        self.service: LocalService | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mutate"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def start(self, *, timeout: float = 60.0) -> None:
        self.secret_namespace = create_namespace(self.control_plane, "stellar-carbon-e2e-")
        configuration = mutating_webhook_configuration(
            self.config_name,
            self.url,
            "",  # the webhook injects its own CA
            failure_policy="Ignore",
            timeout_seconds=self._timeout_seconds,
            namespace_selector=self._namespace_selector,
        )
        self.control_plane.request("POST", _MWC_PATH, configuration)
        self.service = LocalService(
            "webhook",
            "webhook",
            webhook_env(
                kubeconfig=self.control_plane.kubeconfig_path,
                port=self.port,
                health_port=self.health_port,
                secret_name=self.secret_name,
                secret_namespace=self.secret_namespace,
                config_name=self.config_name,
                carbon=self._carbon,
            ),
            self._log_dir,
        )
        self.service.start()
        self.wait_ready(timeout=timeout)

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Ready, with its CA in the configuration, serving a certificate that CA verifies."""
        service = self._service()
        service.wait_until(
            "/readyz 200",
            lambda: http_get(f"{self.health_url}/readyz")[0] == 200,
            timeout=timeout,
        )
        service.wait_until(
            "caBundle injected",
            lambda: bool(ca_bundle_of(self.control_plane, self.config_name)),
            timeout=timeout,
        )
        service.wait_until(
            "verified TLS handshake",
            lambda: tls_handshake_verified(
                self.port, ca_bundle_of(self.control_plane, self.config_name)
            ),
            timeout=timeout,
        )

    def kill(self) -> None:
        self._service().kill()

    def restart(self, *, timeout: float = 60.0) -> None:
        service = self._service()
        service.stop()
        service.start()
        self.wait_ready(timeout=timeout)

    def admissions(self) -> dict[str, float]:
        """``stellar_carbon_webhook_admissions_total`` by outcome, from ``/metrics``."""
        status, body = http_get(f"{self.health_url}/metrics")
        if status != 200:
            raise AssertionError(f"webhook /metrics -> HTTP {status}")
        return {
            dict(labels)["outcome"]: value
            for (name, labels), value in prometheus_samples(body.decode()).items()
            if name == "stellar_carbon_webhook_admissions_total"
        }

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
        with contextlib.suppress(ApiStatusError):
            self.control_plane.request("DELETE", f"{_MWC_PATH}/{self.config_name}")
        if self.secret_namespace is not None:
            delete_namespace(self.control_plane, self.secret_namespace)

    def _service(self) -> LocalService:
        if self.service is None:
            raise ServiceError("the webhook was never started")
        return self.service

    def __enter__(self) -> LocalWebhook:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LocalReporter:
    """The sustainability reporter as a local process watching the cluster's nodes and pods."""

    def __init__(
        self,
        control_plane: ControlPlane,
        *,
        carbon: Mapping[str, str],
        log_dir: Path,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.service = LocalService(
            "reporter",
            "reporter",
            reporter_env(kubeconfig=control_plane.kubeconfig_path, port=self.port, carbon=carbon),
            log_dir,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> Any:
        """JSON of ``/api/v1/sustainability/<path>``."""
        return http_json(f"{self.url}/api/v1/sustainability/{path}")

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, body = http_get(f"{self.url}/metrics")
        if status != 200:
            raise AssertionError(f"reporter /metrics -> HTTP {status}")
        return prometheus_samples(body.decode())

    def start(self, *, timeout: float = 60.0) -> None:
        self.service.start()
        self.service.wait_until(
            "health 200",
            lambda: http_get(f"{self.url}/api/v1/sustainability/health")[0] == 200,
            timeout=timeout,
        )

    def close(self) -> None:
        self.service.stop()

    def __enter__(self) -> LocalReporter:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def serve_namespace(api: k8s.ApiClient, namespace: str) -> None:
    """Label ``namespace`` for the ``LocalWebhook`` and wait until admission there goes through
    it (the API server learns of namespace labels through an informer)."""
    await k8s.CoreV1Api(api).patch_namespace(
        namespace, as_body({"metadata": {"labels": {WEBHOOK_NAMESPACE_LABEL: "enabled"}}})
    )
    await wait_for_admission(
        api,
        namespace,
        read_replica_pod("probe"),
        lambda pod: RANKING_ANNOTATION in (pod.metadata.annotations or {}),
    )


# --- workloads ----------------------------------------------------------------------------------


def stellar_core_container() -> dict[str, Any]:
    """A stellar-core container as the read pool runs it (kwok never starts it)."""
    return {
        "name": "stellar-core",
        "image": STELLAR_CORE_IMAGE,
        "args": ["run", "--conf", "/etc/stellar/stellar-core.cfg"],
        "ports": [
            {"name": "peer", "containerPort": 11625, "protocol": "TCP"},
            {"name": "http", "containerPort": 11626, "protocol": "TCP"},
        ],
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": {"memory": "2Gi"},
        },
    }


def read_replica_pod(name: str) -> dict[str, Any]:
    """A bare read-replica pod (label ``app=<name>``), e.g. to probe admission with dry runs."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**READ_REPLICA, "app": name}},
        "spec": {"containers": [stellar_core_container()]},
    }


def read_pool(name: str, replicas: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A headless Service and a StatefulSet shaped like the Stellar-K8s operator's read pool:
    the role label on the pod template, the carbon-aware annotation only on the StatefulSet
    (where the operator puts it and from where it never reaches the pods)."""
    labels = {
        "app.kubernetes.io/name": "stellar-node",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "read-pool",
        "app.kubernetes.io/managed-by": "stellar-operator",
        **READ_REPLICA,
    }
    selector = {"app.kubernetes.io/instance": name, **READ_REPLICA}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "clusterIP": "None",
            "selector": selector,
            "ports": [
                {"name": "peer", "port": 11625, "targetPort": "peer"},
                {"name": "http", "port": 11626, "targetPort": "http"},
            ],
        },
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"stellar.org/carbon-aware": "enabled"},
        },
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [stellar_core_container()],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                },
            },
        },
    }
    return service, statefulset


async def create_read_pool(api: k8s.ApiClient, namespace: str, name: str, replicas: int) -> str:
    """Create a read pool; return the label selector of its pods."""
    service, statefulset = read_pool(name, replicas)
    await k8s.CoreV1Api(api).create_namespaced_service(namespace, as_body(service))
    await k8s.AppsV1Api(api).create_namespaced_stateful_set(namespace, as_body(statefulset))
    return f"app.kubernetes.io/instance={name}"


# --- placement ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionPlacement:
    """One row of a placement table."""

    region: str
    cloud: str
    intensity: float | None
    """gCO2eq/kWh the placement was decided on; None when unknown."""
    weight: int | None
    """Preferred node-affinity weight the pods got for this region; None for no term."""
    pods: tuple[str, ...]


def preference_weights(affinity_terms: Sequence[Mapping[str, Any]], key: str) -> dict[str, int]:
    """Region → weight from preferred node-affinity terms (as the API returns them) on ``key``."""
    weights: dict[str, int] = {}
    for term in affinity_terms:
        for expression in term["preference"].get("matchExpressions") or []:
            if expression["key"] == key and expression["operator"] == "In":
                for region in expression["values"]:
                    weights[region] = int(term["weight"])
    return weights


def placement_rows(
    *,
    pod_nodes: Mapping[str, str],
    node_regions: Mapping[str, str],
    region_clouds: Mapping[str, str],
    intensities: Mapping[str, float],
    weights: Mapping[str, int] | None = None,
) -> list[RegionPlacement]:
    """Rows for every region with nodes, greenest first, with the pods bound there."""
    by_region: dict[str, list[str]] = {region: [] for region in region_clouds}
    for pod, node in sorted(pod_nodes.items()):
        by_region.setdefault(node_regions.get(node, "?"), []).append(pod)
    rows = [
        RegionPlacement(
            region=region,
            cloud=region_clouds.get(region, "?"),
            intensity=intensities.get(region),
            weight=(weights or {}).get(region),
            pods=tuple(pods),
        )
        for region, pods in by_region.items()
    ]
    rows.sort(key=lambda r: (r.intensity is None, r.intensity or 0.0, r.region))
    return rows


def placement_table(rows: Sequence[RegionPlacement], *, title: str = "") -> str:
    """A fixed-width text table: region, cloud, intensity, weight, pod count and names."""
    header = ("region", "cloud", "gCO2eq/kWh", "weight", "pods", "placed")
    body = [
        (
            row.region,
            row.cloud,
            "unknown" if row.intensity is None else f"{row.intensity:.0f}",
            "-" if row.weight is None else str(row.weight),
            str(len(row.pods)),
            ", ".join(row.pods) or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    right = {2, 3, 4}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    lines = [title] if title else []
    lines += [line(header), line(["-" * w for w in widths])]
    lines += [line(cells) for cells in body]
    return "\n".join(lines)
