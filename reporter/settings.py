"""The reporter's settings, parsed once at startup from the environment.

``STELLAR_CARBON_REPORTER_*`` holds what is specific to serving the sustainability API; the carbon
data settings (provider chain, tokens, cache, extra regions, ranking horizon) are the carbon
library's ``STELLAR_CARBON_*`` ones, shared with the webhook so one Helm value configures both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from shared.core.errors import ConfigError
from shared.settings import CarbonSettings

PREFIX = "STELLAR_CARBON_REPORTER_"
MAX_PAGE_SIZE = 5000

InventorySource = Literal["kubernetes", "demo"]


@dataclass(frozen=True, slots=True)
class ReporterSettings:
    """Everything the reporter needs beyond the carbon library. Environment names in brackets."""

    host: str = "0.0.0.0"  # noqa: S104 — in a pod the service must listen on the pod IP
    """Address to listen on [HOST]."""
    port: int = 9090
    """HTTP port for the API and ``/metrics`` [PORT]; tooling relies on 9090."""
    default_page_size: int = 500
    """Nodes per page when ``/nodes`` is called without ``limit`` [DEFAULT_PAGE_SIZE]."""
    inventory: InventorySource = "kubernetes"
    """Where nodes and pods come from: the Kubernetes API or the built-in demo [INVENTORY]."""
    pod_namespace: str | None = None
    """Watch Stellar pods in this namespace only (the chart's least-privilege Role); unset
    watches every namespace [POD_NAMESPACE]."""
    node_metrics: bool = False
    """Read node CPU usage from metrics.k8s.io for the power model (else 50 %) [NODE_METRICS]."""
    node_metrics_interval_seconds: float = 60.0
    """How often to read metrics.k8s.io when enabled [NODE_METRICS_INTERVAL_SECONDS]."""
    log_level: str = "INFO"
    """Python logging level [LOG_LEVEL]."""
    carbon: CarbonSettings = field(default_factory=CarbonSettings)
    """Carbon data settings (``STELLAR_CARBON_*``); ``extra_regions`` are reported too."""

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"{PREFIX}PORT must be from 1 to 65535, got {self.port}")
        if not 1 <= self.default_page_size <= MAX_PAGE_SIZE:
            raise ConfigError(
                f"{PREFIX}DEFAULT_PAGE_SIZE must be from 1 to {MAX_PAGE_SIZE}, "
                f"got {self.default_page_size}"
            )
        if self.inventory not in ("kubernetes", "demo"):
            raise ConfigError(f"{PREFIX}INVENTORY must be kubernetes or demo, got {self.inventory}")
        if self.node_metrics_interval_seconds < 5:
            raise ConfigError(f"{PREFIX}NODE_METRICS_INTERVAL_SECONDS must be at least 5")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReporterSettings:
        """Settings from the environment; unset variables keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"carbon": CarbonSettings.from_env(env)}
        for spec in fields(cls):
            if spec.name == "carbon":
                continue
            name = PREFIX + spec.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[spec.name] = _parse(name, spec.name, raw.strip())
        return cls(**values)

    def describe(self) -> dict[str, Any]:
        """The effective settings for the startup log line; secrets only as set/unset."""
        described: dict[str, Any] = {
            spec.name: getattr(self, spec.name) for spec in fields(self) if spec.name != "carbon"
        }
        described["carbon"] = self.carbon.describe()
        return described


def _parse(variable: str, field_name: str, raw: str) -> Any:
    try:
        if field_name in ("port", "default_page_size"):
            return int(raw)
        if field_name == "node_metrics_interval_seconds":
            return float(raw)
        if field_name == "node_metrics":
            return _boolean(raw)
        if field_name in ("inventory", "log_level"):
            return raw.lower() if field_name == "inventory" else raw.upper()
        return raw
    except ValueError as e:
        raise ConfigError(f"{variable} is invalid: {e}") from e


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")
