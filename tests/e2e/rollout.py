"""The webhook as a Deployment behind a Service, with the controllers' part played by hand.

The chart runs the webhook as a Deployment of two replicas behind a Service, registered with
``clientConfig.service``. Here the replicas are ``python -m webhook`` processes in self-managed TLS
mode (one Secret, one CA, injected by the webhook itself), each on its own port of this machine's
non-loopback address. The control plane must run with ``aggregator_routing``: the API server then
resolves the Service to one of its ready endpoints when it dials (``ResolveEndpoint`` in
k8s.io/apiserver), as the cluster network would route the ClusterIP.

``WebhookDeployment`` plays the endpoints controller and the Deployment controller:

* a replica is listed in the Service's endpoints only once its ``/readyz`` answers 200 (the
  kubelet's readiness probe); each replica has an EndpointSlice of its own because its port
  differs, as the endpoint-slice controller splits pods whose named ``targetPort`` resolves to
  different numbers;
* ``roll()`` is a RollingUpdate with ``maxSurge: 1, maxUnavailable: 0`` (what the Deployment's
  defaults come to for two replicas, and what the PodDisruptionBudget allows): start a new replica,
  wait until ready, list it, then terminate an old one. Terminating is what a pod deletion does:
  the process gets SIGTERM (once, as from the kubelet) and its endpoint turns ``ready: false,
  terminating: true``, ``endpoint_lag`` seconds later: the kubelet and the endpoint-slice
  controller react to the deletion independently, and where kube-proxy routes the Service (the
  API server's default) the node's rules follow later still.

Loopback addresses are refused in EndpointSlices, hence the machine's own address.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from tests.e2e.cluster import ApiStatusError, ControlPlane, free_port
from tests.e2e.kube import mutating_webhook_configuration
from tests.e2e.probes import http_get, metric_samples
from tests.e2e.processes import LocalService
from webhook.certs import KeyPair, inspect, issue_serving

SERVICE_NAME: Final = "stellar-carbon-webhook"
CONFIG_NAME: Final = "stellar-carbon-webhook"
SECRET_NAME: Final = "stellar-carbon-webhook-tls"
MANAGED_BY: Final = "e2e.stellar.org"
PORT_NAME: Final = "https"

_SLICES: Final = "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
_MWC_PATH: Final = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


def host_address() -> str:
    """This machine's primary non-loopback IPv4 address (the one its default route uses)."""
    address = "127.0.0.1"
    with (
        contextlib.suppress(OSError),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe,
    ):
        # A UDP "connection" sends nothing; it only asks the kernel which source it would use
        # towards a documentation address (TEST-NET-3), i.e. along the default route.
        probe.connect(("203.0.113.1", 9))
        address = probe.getsockname()[0]
    if address.startswith("127."):
        address = socket.gethostbyname(socket.gethostname())
    if address.startswith("127."):
        raise RuntimeError("this machine has no non-loopback IPv4 address for endpoints")
    return address


@dataclass
class Replica:
    """One webhook process, as one pod of the Deployment."""

    name: str
    address: str
    port: int
    health_port: int
    process: LocalService

    @property
    def ready(self) -> bool:
        with contextlib.suppress(OSError):
            return http_get(f"http://{self.address}:{self.health_port}/readyz")[0] == 200
        return False

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return metric_samples(f"http://{self.address}:{self.health_port}/metrics")

    def counter(self, name: str) -> float:
        """The sum of a counter's samples over all labels."""
        return sum(v for (sample, _), v in self.metrics().items() if sample == name)


class WebhookDeployment:
    """The webhook's Service, its replicas, their endpoints and rolling updates."""

    def __init__(
        self,
        control_plane: ControlPlane,
        *,
        namespace: str,
        carbon: Mapping[str, str],
        log_dir: Path,
        replicas: int = 2,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.control_plane = control_plane
        self.namespace = namespace
        self.address = host_address()
        self.replicas: list[Replica] = []
        self.retired: list[Replica] = []
        """Replicas a roll terminated, kept for their logs."""
        self._wanted = replicas
        self._carbon = dict(carbon)
        self.env = dict(env or {})
        """Extra settings of replicas started from now on (a changed pod template)."""
        self._log_dir = log_dir
        self._names = (f"webhook-{n}" for n in itertools.count(1))
        self._slices = _SLICES.format(namespace=namespace)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, *, timeout: float = 60.0) -> None:
        """The Service, then the replicas one by one, each listed once ready."""
        create_service(self.control_plane, self.namespace, SERVICE_NAME)
        for _ in range(self._wanted):
            self._list(self._surge(timeout=timeout))

    def configuration(self, name: str = CONFIG_NAME, **selectors: Any) -> dict[str, Any]:
        """The webhook's MutatingWebhookConfiguration, by Service as the chart writes it, with an
        empty ``caBundle`` for the webhook to inject."""
        configuration = mutating_webhook_configuration(name, "", "", **selectors)
        configuration["webhooks"][0]["name"] = "pods.carbon.stellar.org"
        configuration["webhooks"][0]["clientConfig"] = {
            "service": {
                "namespace": self.namespace,
                "name": SERVICE_NAME,
                "path": "/mutate",
                "port": 443,
            }
        }
        return configuration

    def register(self, configuration: Mapping[str, Any]) -> None:
        self.control_plane.request("POST", _MWC_PATH, configuration)

    def unregister(self, name: str = CONFIG_NAME) -> None:
        with contextlib.suppress(ApiStatusError):
            self.control_plane.request("DELETE", f"{_MWC_PATH}/{name}")

    def registered(self, name: str = CONFIG_NAME) -> dict[str, Any]:
        """The configuration as stored (with whatever ``caBundle`` the webhook injected)."""
        stored: dict[str, Any] = self.control_plane.request("GET", f"{_MWC_PATH}/{name}")
        return stored

    def age_serving_certificate(self) -> str:
        """Make the stored serving certificate due for renewal, as time would: replace it in the
        Secret with one from the same CA whose lifetime is five-sixths gone (renewal starts when
        under a third is left). Return the fingerprint of that aged certificate.

        Every replica's next check finds it due; one renews it in the Secret, the others lose the
        optimistic update and take the winner's pair; each loads the new pair into its live TLS
        context. The CA stays, so the ``caBundle`` does not change.
        """
        path = f"/api/v1/namespaces/{self.namespace}/secrets/{SECRET_NAME}"
        secret = self.control_plane.request("GET", path)
        data = secret["data"]
        ca = KeyPair(base64.b64decode(data["ca.crt"]), base64.b64decode(data["ca.key"]))
        current = inspect(base64.b64decode(data["tls.crt"]))
        aged = issue_serving(
            ca,
            dns_names=current.dns_names,
            ip_addresses=current.ip_addresses,
            now=datetime.now(UTC) - timedelta(hours=20),
            days=1,
        )
        data["tls.crt"] = base64.b64encode(aged.cert_pem).decode("ascii")
        data["tls.key"] = base64.b64encode(aged.key_pem).decode("ascii")
        self.control_plane.request("PUT", path, secret)
        return inspect(aged.cert_pem).fingerprint

    def serving_fingerprint(self) -> str:
        """The fingerprint of the serving certificate stored in the Secret."""
        path = f"/api/v1/namespaces/{self.namespace}/secrets/{SECRET_NAME}"
        data = self.control_plane.request("GET", path)["data"]
        return inspect(base64.b64decode(data["tls.crt"])).fingerprint

    def certificate_reloads(self) -> dict[str, float]:
        """Certificate reloads per live replica since it started."""
        return {
            r.name: r.counter("stellar_carbon_webhook_certificate_reloads_total")
            for r in self.replicas
        }

    def roll(self, *, endpoint_lag: float = 0.0, timeout: float = 60.0) -> list[str]:
        """Replace every replica, one at a time (``maxSurge: 1, maxUnavailable: 0``); return the
        names of the new replicas. ``endpoint_lag``: seconds between an old replica's SIGTERM and
        its endpoint turning not ready."""
        fresh = []
        for old in list(self.replicas):
            new = self._surge(timeout=timeout)
            self._list(new)
            self._terminate(old, lag=endpoint_lag)
            fresh.append(new.name)
        return fresh

    def close(self) -> None:
        for replica in self.replicas:
            replica.process.stop()
        self.replicas.clear()

    def __enter__(self) -> WebhookDeployment:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the controllers' part ------------------------------------------------------------------

    def _surge(self, *, timeout: float) -> Replica:
        """A new replica, started and ready but not yet listed."""
        name = next(self._names)
        port, health_port = free_port(self.address), free_port(self.address)
        process = LocalService(
            name,
            "webhook",
            {
                "STELLAR_CARBON_WEBHOOK_INVENTORY": "kubernetes",
                "STELLAR_CARBON_WEBHOOK_KUBECONFIG": str(self.control_plane.kubeconfig_path),
                "STELLAR_CARBON_WEBHOOK_BIND_ADDRESS": self.address,
                "STELLAR_CARBON_WEBHOOK_PORT": str(port),
                "STELLAR_CARBON_WEBHOOK_HEALTH_PORT": str(health_port),
                "STELLAR_CARBON_WEBHOOK_TLS_MODE": "self-managed",
                "STELLAR_CARBON_WEBHOOK_SECRET_NAME": SECRET_NAME,
                "STELLAR_CARBON_WEBHOOK_SERVICE_NAME": SERVICE_NAME,
                "STELLAR_CARBON_WEBHOOK_SERVICE_NAMESPACE": self.namespace,
                "STELLAR_CARBON_WEBHOOK_CONFIG_NAME": CONFIG_NAME,
                **self._carbon,
                **self.env,
            },
            self._log_dir,
        )
        replica = Replica(name, self.address, port, health_port, process)
        process.start()
        self.replicas.append(replica)
        process.wait_until("/readyz 200", lambda: replica.ready, timeout=timeout)
        return replica

    def _list(self, replica: Replica) -> None:
        self.control_plane.request("POST", self._slices, self._slice(replica, ready=True))

    def _terminate(self, replica: Replica, *, lag: float, grace: float = 30.0) -> None:
        """What deleting its pod does: SIGTERM, and the endpoint turned not ready and terminating
        ``lag`` seconds later; gone once the process has exited."""
        replica.process.signal_stop()
        time.sleep(lag)
        self.control_plane.request(
            "PUT",
            f"{self._slices}/{self._slice_name(replica)}",
            self._slice(replica, ready=False),
        )
        self.replicas.remove(replica)
        self.retired.append(replica)
        replica.process.wait_stopped(grace)
        self.control_plane.request("DELETE", f"{self._slices}/{self._slice_name(replica)}")

    def _slice_name(self, replica: Replica) -> str:
        return f"{SERVICE_NAME}-{replica.name}"

    def _slice(self, replica: Replica, *, ready: bool) -> dict[str, Any]:
        return endpoint_slice(
            SERVICE_NAME, self._slice_name(replica), replica.address, replica.port, ready=ready
        )


def create_service(control_plane: ControlPlane, namespace: str, name: str) -> None:
    """A ClusterIP Service on port 443 without a selector: its endpoints are written by hand
    (``endpoint_slice``), as the endpoint-slice controller would for pods."""
    control_plane.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/services",
        {
            "metadata": {"name": name},
            "spec": {
                "type": "ClusterIP",
                "ports": [{"name": PORT_NAME, "port": 443, "targetPort": PORT_NAME}],
            },
        },
    )


def endpoint_slice(
    service: str, name: str, address: str, port: int, *, ready: bool
) -> dict[str, Any]:
    """An EndpointSlice ``name`` of ``service`` with one endpoint, ready or terminating."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {"ready": ready, "serving": True, "terminating": not ready},
            }
        ],
        "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}],
    }


def wait_for(what: str, probe: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Poll ``probe`` until it holds (synchronous; for threads beside an event loop)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout:.0f}s")
        time.sleep(0.2)
