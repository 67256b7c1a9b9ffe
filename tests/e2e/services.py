"""The webhook and the reporter as local processes next to the end-to-end control plane.

``LocalWebhook`` adds what the webhook needs around its process: a secret namespace, a
MutatingWebhookConfiguration registered by loopback URL with an empty ``caBundle`` (the webhook's
self-managed TLS fills it in) and a readiness check that does a verified TLS handshake with the CA
the webhook published. ``LocalReporter`` waits for the reporter's health endpoint. Both are
synchronous, like ``LocalService``; ``serve_namespace`` is asynchronous, like the rest of the e2e
Kubernetes helpers.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Self

from kubernetes_asyncio import client as k8s

from tests.e2e.cluster import ApiStatusError, ControlPlane, free_port
from tests.e2e.kube import as_body, mutating_webhook_configuration, wait_for_admission
from tests.e2e.pki import write_private
from tests.e2e.probes import http_get, http_json, metric_samples, tls_handshake_verified
from tests.e2e.processes import LocalService, ServiceError
from tests.e2e.workloads import read_replica_pod

WEBHOOK_NAMESPACE_LABEL: Final = "e2e.stellar.org/carbon-webhook"
"""Namespaces carrying this label (value ``enabled``) are sent to a ``LocalWebhook``."""
RANKING_ANNOTATION: Final = "stellar.org/carbon-ranking"

MWC_PATH: Final = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


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
        # Short, so a restricted pod left Pending is reported within a test's patience.
        "STELLAR_CARBON_WEBHOOK_UNSCHEDULABLE_GRACE": "2",
        # Registered by URL, no endpoints drop it: a restart need not wait out the drain.
        "STELLAR_CARBON_WEBHOOK_SHUTDOWN_DELAY": "0",
        **carbon,
    }


def reporter_env(
    *, kubeconfig: Path, port: int, carbon: Mapping[str, str], history: Path
) -> dict[str, str]:
    """The reporter outside the cluster: nodes and pods from ``kubeconfig``, on loopback, its
    history in ``history`` (an SQLite file)."""
    return {
        "STELLAR_CARBON_REPORTER_INVENTORY": "kubernetes",
        "KUBECONFIG": str(kubeconfig),
        "STELLAR_CARBON_REPORTER_HOST": "127.0.0.1",
        "STELLAR_CARBON_REPORTER_PORT": str(port),
        "STELLAR_CARBON_REPORTER_HISTORY_URL": str(history),
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
    config = control_plane.request("GET", f"{MWC_PATH}/{config_name}")
    encoded = (config["webhooks"][0].get("clientConfig") or {}).get("caBundle") or ""
    return base64.b64decode(encoded)


class _Lifetime:
    """A local service as a context manager: ``close()`` undoes whatever ``start()`` got done,
    also when ``start()`` fails halfway (a registered configuration, a namespace, a process)."""

    def start(self, *, timeout: float = 60.0) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LocalWebhook(_Lifetime):
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
        self.control_plane.request("POST", MWC_PATH, configuration)
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
        return {
            dict(labels)["outcome"]: value
            for (name, labels), value in metric_samples(f"{self.health_url}/metrics").items()
            if name == "stellar_carbon_webhook_admissions_total"
        }

    def metric(self, name: str) -> float:
        """One unlabelled sample from ``/metrics`` (0 when absent)."""
        return metric_samples(f"{self.health_url}/metrics").get((name, frozenset()), 0.0)

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
        with contextlib.suppress(ApiStatusError):
            self.control_plane.request("DELETE", f"{MWC_PATH}/{self.config_name}")
        if self.secret_namespace is not None:
            delete_namespace(self.control_plane, self.secret_namespace)

    def _service(self) -> LocalService:
        if self.service is None:
            raise ServiceError("the webhook was never started")
        return self.service


class LocalReporter(_Lifetime):
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
            reporter_env(
                kubeconfig=control_plane.kubeconfig_path,
                port=self.port,
                carbon=carbon,
                history=log_dir / f"reporter-{self.port}-history.db",
            ),
            log_dir,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> Any:
        """JSON of ``/api/v1/sustainability/<path>``."""
        return http_json(f"{self.url}/api/v1/sustainability/{path}")

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return metric_samples(f"{self.url}/metrics")

    def start(self, *, timeout: float = 60.0) -> None:
        self.service.start()
        self.service.wait_until(
            "health 200",
            lambda: http_get(f"{self.url}/api/v1/sustainability/health")[0] == 200,
            timeout=timeout,
        )

    def close(self) -> None:
        self.service.stop()


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
