"""The webhook's own settings, parsed once at startup from ``STELLAR_CARBON_WEBHOOK_*`` variables.

Carbon data settings (providers, cache, refresh) live in ``shared.settings``; this module covers
what only the admission webhook needs: ports, TLS, the placement policy and where the node
inventory comes from. Every error names the variable that caused it.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from shared.core.errors import ConfigError

PREFIX = "STELLAR_CARBON_WEBHOOK_"

_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.StrEnum)


class Policy(enum.StrEnum):
    """How strongly a pod is steered to low-carbon regions."""

    PREFER = "prefer"  # preferred node affinity only; the scheduler may still go elsewhere
    REQUIRE = "require"  # also a required term: only the low-carbon regions are allowed


class TlsMode(enum.StrEnum):
    FILES = "files"  # tls.crt/tls.key mounted from a Secret (cert-manager, Helm-generated, ...)
    SELF_MANAGED = "self-managed"  # generate a CA and serving cert, keep them in one Secret


class InventorySource(enum.StrEnum):
    KUBERNETES = "kubernetes"  # list+watch: the pod's service account, else a kubeconfig file
    FILE = "file"  # a static YAML/JSON node list, for demos and tests
    DEMO = "demo"  # the built-in demo inventory


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Effective settings of one webhook process. Holds no secrets, so it can be logged whole."""

    port: int = 8443
    """HTTPS port serving ``/mutate``; the Service maps 443 to it."""

    health_port: int = 8080
    """Plain-HTTP port for ``/healthz``, ``/readyz`` and ``/metrics``: probes need no TLS."""

    bind_address: str = "0.0.0.0"  # noqa: S104 - a pod must accept traffic from its Service
    """Address both sites listen on."""

    tls_mode: TlsMode = TlsMode.FILES
    """Where the serving certificate comes from."""

    cert_dir: str = "/etc/stellar-carbon/webhook-tls"
    """Directory holding ``tls.crt`` and ``tls.key`` in ``files`` mode."""

    cert_check_interval: float = 10.0
    """Seconds between digests of the certificate files. Mounted Secrets are updated by the kubelet
    through a symlink swap that sends no inotify event on the files, so only polling is reliable."""

    secret_name: str = "stellar-carbon-webhook-tls"  # noqa: S105 - a name, not a secret
    """Secret holding the CA and serving pair in ``self-managed`` mode, shared by all replicas."""

    secret_namespace: str = "stellar-carbon"  # noqa: S105 - a namespace
    """Namespace of that Secret; defaults to the service namespace."""

    webhook_config_name: str = "stellar-carbon-webhook"
    """MutatingWebhookConfiguration whose ``caBundle`` the self-managed mode keeps current."""

    service_name: str = "stellar-carbon-webhook"
    """Service the API server calls; its DNS names go into the certificate's SANs."""

    service_namespace: str = "stellar-carbon"
    """Namespace of that Service (``POD_NAMESPACE`` when set by the chart)."""

    extra_dns_names: tuple[str, ...] = ()
    """Additional DNS SANs, e.g. ``localhost`` for port-forwarding."""

    extra_ips: tuple[str, ...] = ()
    """Additional IP SANs, e.g. ``127.0.0.1`` when the API server calls a URL on loopback."""

    cert_validity_days: int = 365
    """Lifetime of a generated serving certificate."""

    ca_validity_days: int = 3650
    """Lifetime of a generated CA. Rotating it means a new caBundle, so it lives long."""

    rotation_check_interval: float = 3600.0
    """Seconds between checks of the Secret: renew when under a third of the lifetime is left, and
    pick up a pair another replica renewed."""

    tls_min_version: str = "1.2"
    """Lowest TLS version accepted: ``1.2`` or ``1.3``."""

    default_policy: Policy = Policy.PREFER
    """Policy for pods without a valid ``stellar.org/carbon-policy`` annotation."""

    low_carbon_fraction: float = 0.10
    """Under ``require``, regions within this fraction of the greenest expected intensity."""

    inventory: InventorySource = InventorySource.KUBERNETES
    """Where the node inventory comes from."""

    kubeconfig: str | None = None
    """Kubeconfig path for the ``kubernetes`` inventory and self-managed TLS outside a cluster;
    None means the service account inside a pod, else ``KUBECONFIG`` or ``~/.kube/config``."""

    inventory_file: str | None = None
    """Node list for the ``file`` inventory."""

    max_body_bytes: int = 8 * 1024 * 1024
    """Largest AdmissionReview accepted. A big pod's review exceeds aiohttp's 1 MiB default."""

    shutdown_timeout: float = 10.0
    """Seconds in-flight requests get after SIGTERM before connections are closed."""

    log_level: str = "INFO"

    @property
    def dns_names(self) -> tuple[str, ...]:
        """Every DNS name the API server or an operator may use to reach the Service."""
        svc, ns = self.service_name, self.service_namespace
        names = [svc, f"{svc}.{ns}", f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.cluster.local"]
        names.extend(name for name in self.extra_dns_names if name not in names)
        return tuple(names)

    def describe(self) -> dict[str, Any]:
        """The settings as plain values, for the one startup log line."""
        return {
            key: str(value) if isinstance(value, enum.Enum) else value
            for key, value in asdict(self).items()
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSettings:
        """Parse ``STELLAR_CARBON_WEBHOOK_*``; unset or empty variables keep their defaults."""
        reader = _Reader(env)
        defaults = cls()
        service_namespace = reader.text(
            "SERVICE_NAMESPACE", env.get("POD_NAMESPACE") or defaults.service_namespace
        )
        extra_dns, extra_ips = reader.sans("EXTRA_SANS")
        inventory = reader.choice("INVENTORY", InventorySource, defaults.inventory)
        inventory_file = reader.optional("INVENTORY_FILE")
        if inventory is InventorySource.FILE and inventory_file is None:
            raise ConfigError(f"{PREFIX}INVENTORY_FILE: required when {PREFIX}INVENTORY is 'file'")
        tls_min_version = reader.text("TLS_MIN_VERSION", defaults.tls_min_version)
        if tls_min_version not in ("1.2", "1.3"):
            raise ConfigError(
                f"{PREFIX}TLS_MIN_VERSION: expected '1.2' or '1.3', got {tls_min_version!r}"
            )
        settings = cls(
            port=reader.port("PORT", defaults.port),
            health_port=reader.port("HEALTH_PORT", defaults.health_port),
            bind_address=reader.text("BIND_ADDRESS", defaults.bind_address),
            tls_mode=reader.choice("TLS_MODE", TlsMode, defaults.tls_mode),
            cert_dir=reader.text("CERT_DIR", defaults.cert_dir),
            cert_check_interval=reader.number(
                "CERT_CHECK_INTERVAL", defaults.cert_check_interval, low=0.1
            ),
            secret_name=reader.text("SECRET_NAME", defaults.secret_name),
            secret_namespace=reader.text("SECRET_NAMESPACE", service_namespace),
            webhook_config_name=reader.text("CONFIG_NAME", defaults.webhook_config_name),
            service_name=reader.text("SERVICE_NAME", defaults.service_name),
            service_namespace=service_namespace,
            extra_dns_names=extra_dns,
            extra_ips=extra_ips,
            cert_validity_days=reader.integer(
                "CERT_VALIDITY_DAYS", defaults.cert_validity_days, low=1
            ),
            ca_validity_days=reader.integer("CA_VALIDITY_DAYS", defaults.ca_validity_days, low=1),
            rotation_check_interval=reader.number(
                "ROTATION_CHECK_INTERVAL", defaults.rotation_check_interval, low=1.0
            ),
            tls_min_version=tls_min_version,
            default_policy=reader.choice("DEFAULT_POLICY", Policy, defaults.default_policy),
            low_carbon_fraction=reader.number(
                "LOW_CARBON_FRACTION", defaults.low_carbon_fraction, low=0.0
            ),
            inventory=inventory,
            kubeconfig=reader.optional("KUBECONFIG"),
            inventory_file=inventory_file,
            max_body_bytes=reader.integer(
                "MAX_BODY_BYTES", defaults.max_body_bytes, low=1024 * 1024
            ),
            shutdown_timeout=reader.number("SHUTDOWN_TIMEOUT", defaults.shutdown_timeout, low=0.0),
            log_level=reader.text("LOG_LEVEL", defaults.log_level).upper(),
        )
        if settings.ca_validity_days < settings.cert_validity_days:
            raise ConfigError(
                f"{PREFIX}CA_VALIDITY_DAYS: must be at least {PREFIX}CERT_VALIDITY_DAYS "
                f"({settings.cert_validity_days})"
            )
        if settings.port == settings.health_port:
            raise ConfigError(f"{PREFIX}HEALTH_PORT: must differ from {PREFIX}PORT")
        return settings


@dataclass(frozen=True, slots=True)
class _Reader:
    """Typed access to the prefixed variables; every message names the full variable."""

    env: Mapping[str, str]
    prefix: str = field(default=PREFIX)

    def optional(self, name: str) -> str | None:
        value = self.env.get(self.prefix + name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def _parsed(self, name: str, default: _T, parse: Callable[[str], _T], expected: str) -> _T:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as e:
            raise ConfigError(f"{self.prefix}{name}: expected {expected}, got {raw!r}") from e

    def integer(self, name: str, default: int, *, low: int) -> int:
        value = self._parsed(name, default, int, "an integer")
        if value < low:
            raise ConfigError(f"{self.prefix}{name}: must be at least {low}, got {value}")
        return value

    def number(self, name: str, default: float, *, low: float) -> float:
        value = self._parsed(name, default, float, "a number")
        if not value >= low:  # also rejects nan
            raise ConfigError(f"{self.prefix}{name}: must be at least {low}, got {value}")
        return value

    def port(self, name: str, default: int) -> int:
        value = self.integer(name, default, low=1)
        if value > 65535:
            raise ConfigError(f"{self.prefix}{name}: expected a port 1-65535, got {value}")
        return value

    def choice(self, name: str, kind: type[_E], default: _E) -> _E:
        choices = ", ".join(member.value for member in kind)
        return self._parsed(name, default, lambda raw: kind(raw.lower()), f"one of {choices}")

    def sans(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Comma-separated names; entries that parse as IP addresses become IP SANs."""
        raw = self.optional(name)
        if raw is None:
            return (), ()
        dns: list[str] = []
        ips: list[str] = []
        for entry in (part.strip() for part in raw.split(",")):
            if not entry:
                continue
            try:
                ips.append(str(ipaddress.ip_address(entry)))
            except ValueError:
                if any(ch.isspace() or ch in "/:@" for ch in entry):
                    raise ConfigError(
                        f"{self.prefix}{name}: {entry!r} is neither a DNS name nor an IP address"
                    ) from None
                dns.append(entry.lower())
        return tuple(dns), tuple(ips)
