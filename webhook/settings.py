"""The webhook's own settings, parsed once at startup from ``STELLAR_CARBON_WEBHOOK_*`` variables.

Carbon data settings (providers, cache, refresh) live in ``shared.settings``; this module covers
what only the admission webhook needs: ports, TLS, the placement policy and where the node
inventory comes from. Every error names the variable that caused it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import ValidationInfo, model_validator

from shared.cluster.pods import STELLAR_POD_SELECTORS
from shared.settings import values
from shared.settings.env import EnvSettings, Rejected, Variable, from_environment
from shared.settings.inventory import InventorySource

__all__ = ["InventorySource", "Policy", "TlsMode", "WebhookSettings"]


class Policy(enum.StrEnum):
    """How strongly a pod is steered to low-carbon regions."""

    PREFER = "prefer"  # preferred node affinity only; the scheduler may still go elsewhere
    REQUIRE = "require"  # also a required term: only the low-carbon regions are allowed


class TlsMode(enum.StrEnum):
    FILES = "files"  # tls.crt/tls.key mounted from a Secret (cert-manager, Helm-generated, ...)
    SELF_MANAGED = "self-managed"  # generate a CA and serving cert, keep them in one Secret


_SANS = Variable("EXTRA_SANS")
"""Both SAN fields come from one list: its IP addresses are ``extra_ips``, the rest DNS names."""

_SERVICE_NAMESPACE = "stellar-carbon"


class WebhookSettings(EnvSettings):
    """Effective settings of one webhook process. Holds no secrets, so it can be logged whole."""

    env_prefix = "STELLAR_CARBON_WEBHOOK_"

    port: Annotated[int, values.port()] = 8443
    """HTTPS port serving ``/mutate``; the Service maps 443 to it."""

    health_port: Annotated[int, values.port()] = 8080
    """Plain-HTTP port for ``/healthz``, ``/readyz`` and ``/metrics``: probes need no TLS."""

    bind_address: str = "0.0.0.0"  # noqa: S104 - a pod must accept traffic from its Service
    """Address both sites listen on."""

    tls_mode: Annotated[TlsMode, values.choice(TlsMode)] = TlsMode.FILES
    """Where the serving certificate comes from."""

    cert_dir: str = "/etc/stellar-carbon/webhook-tls"
    """Directory holding ``tls.crt`` and ``tls.key`` in ``files`` mode."""

    cert_check_interval: Annotated[float, values.number(low=0.1)] = 10.0
    """Seconds between digests of the certificate files. Mounted Secrets are updated by the kubelet
    through a symlink swap that sends no inotify event on the files, so only polling is reliable."""

    secret_name: str = "stellar-carbon-webhook-tls"  # noqa: S105 - a name, not a secret
    """Secret holding the CA and serving pair in ``self-managed`` mode, shared by all replicas."""

    secret_namespace: str = _SERVICE_NAMESPACE
    """Namespace of that Secret; defaults to the service namespace."""

    webhook_config_name: Annotated[str, Variable("CONFIG_NAME")] = "stellar-carbon-webhook"
    """MutatingWebhookConfiguration whose ``caBundle`` the self-managed mode keeps current."""

    service_name: str = "stellar-carbon-webhook"
    """Service the API server calls; its DNS names go into the certificate's SANs."""

    service_namespace: str = _SERVICE_NAMESPACE
    """Namespace of that Service (``POD_NAMESPACE`` when set by the chart)."""

    extra_dns_names: Annotated[tuple[str, ...], values.dns_names(), _SANS] = ()
    """Additional DNS SANs, e.g. ``localhost`` for port-forwarding."""

    extra_ips: Annotated[tuple[str, ...], values.ip_addresses(), _SANS] = ()
    """Additional IP SANs, e.g. ``127.0.0.1`` when the API server calls a URL on loopback."""

    cert_validity_days: Annotated[int, values.integer(low=1)] = 365
    """Lifetime of a generated serving certificate."""

    ca_validity_days: Annotated[int, values.integer(low=1)] = 3650
    """Lifetime of a generated CA. Rotating it means a new caBundle, so it lives long."""

    rotation_check_interval: Annotated[float, values.number(low=1.0)] = 3600.0
    """Seconds between checks of the Secret: renew when under a third of the lifetime is left, and
    pick up a pair another replica renewed."""

    tls_min_version: Annotated[str, values.text_choice("1.2", "1.3")] = "1.2"
    """Lowest TLS version accepted: ``1.2`` or ``1.3``."""

    default_policy: Annotated[Policy, values.choice(Policy)] = Policy.PREFER
    """Policy for pods without a valid ``stellar.org/carbon-policy`` annotation."""

    low_carbon_fraction: Annotated[float, values.number(low=0.0)] = 0.10
    """Under ``require``, regions within this fraction of the greenest expected intensity."""

    unschedulable_grace: Annotated[float, values.number(low=0.0)] = 60.0
    """Seconds a pod restricted to a required region set may stay unschedulable before it is
    reported (a metric and one warning); the scheduler retries for a while, so not at once."""

    inventory: Annotated[InventorySource, values.choice(InventorySource)] = (
        InventorySource.KUBERNETES
    )
    """Where the node inventory comes from."""

    kubeconfig: str | None = None
    """Kubeconfig path for the ``kubernetes`` inventory and self-managed TLS outside a cluster;
    None means the service account inside a pod, else ``KUBECONFIG`` or ``~/.kube/config``."""

    pod_selector: Annotated[tuple[str, ...], values.label_selectors()] = STELLAR_POD_SELECTORS
    """Label selectors, any one matching, for the pods a read pool is sized from: its placed pods
    and the requests that use up a node's room. The default matches the upstream operator's pods
    (read replicas and the StellarNode's main pod), Stellar apps by ``app.kubernetes.io/name``
    and any pod with a ``stellar.org/role`` label. Pods opted in only by annotation are not
    matched: give them a label a selector matches."""

    watch_all_pods: Annotated[bool, values.boolean()] = False
    """Watch every pod instead: a node's free room then counts the requests of everything bound
    to it, not only Stellar pods. For clusters where Stellar shares nodes with other workloads;
    costs memory and CPU in proportion to all the pods of the cluster."""

    inventory_file: str | None = None
    """Node list for the ``file`` inventory."""

    max_body_bytes: Annotated[int, values.integer(low=1024 * 1024)] = 8 * 1024 * 1024
    """Largest AdmissionReview accepted. A big pod's review exceeds aiohttp's 1 MiB default."""

    shutdown_delay: Annotated[float, values.number(low=0.0)] = 5.0
    """Seconds a replica keeps serving after SIGTERM, not ready and closing each connection after
    its response: the kubelet signals the pod and the endpoints drop it independently, so reviews
    keep arriving for a moment (longer where kube-proxy routes the Service). A second signal ends
    the wait."""

    shutdown_timeout: Annotated[float, values.number(low=0.0)] = 10.0
    """Seconds in-flight requests get, once the delay is over, before connections are closed."""

    log_level: Annotated[str, values.upper_text()] = "INFO"
    """Python logging level."""

    @property
    def dns_names(self) -> tuple[str, ...]:
        """Every DNS name the API server or an operator may use to reach the Service."""
        svc, ns = self.service_name, self.service_namespace
        names = [svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
        names.extend(name for name in self.extra_dns_names if name not in names)
        return tuple(names)

    @classmethod
    def read_env(cls, env: Mapping[str, str]) -> dict[str, object]:
        """The prefixed variables, with the chart's ``POD_NAMESPACE`` as the namespace default."""
        raw = super().read_env(env)
        raw.setdefault("service_namespace", env.get("POD_NAMESPACE") or _SERVICE_NAMESPACE)
        raw.setdefault("secret_namespace", raw["service_namespace"])
        return raw

    @model_validator(mode="after")
    def _check_combinations(self, info: ValidationInfo) -> Self:
        if not from_environment(info):
            return self
        if self.inventory is InventorySource.FILE and self.inventory_file is None:
            raise Rejected(
                f"required when {self.variable('inventory')} is 'file'", field="inventory_file"
            )
        if self.ca_validity_days < self.cert_validity_days:
            raise Rejected(
                f"expected at least {self.variable('cert_validity_days')} "
                f"({self.cert_validity_days}), got {self.ca_validity_days}",
                field="ca_validity_days",
            )
        if self.port == self.health_port:
            raise Rejected(
                f"expected a port other than {self.variable('port')} ({self.port}), "
                f"got {self.health_port}",
                field="health_port",
            )
        return self
