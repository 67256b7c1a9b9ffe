"""The reporter's settings, parsed once at startup from the environment.

``STELLAR_CARBON_REPORTER_*`` holds what is specific to serving the sustainability API; the carbon
data settings (provider chain, tokens, cache, extra regions, ranking horizon) are the carbon
library's ``STELLAR_CARBON_*`` ones, shared with the webhook so one Helm value configures both.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shared.cluster.pods import STELLAR_POD_SELECTORS
from shared.settings import CarbonSettings, values
from shared.settings.env import EnvSettings
from shared.settings.inventory import InventorySource

__all__ = ["MAX_PAGE_SIZE", "InventorySource", "ReporterSettings"]

MAX_PAGE_SIZE = 5000

_SOURCES = (InventorySource.KUBERNETES, InventorySource.DEMO)
"""The reporter reads the cluster or shows the demo; a static node file is the webhook's."""


class ReporterSettings(EnvSettings):
    """Everything the reporter needs beyond the carbon library."""

    env_prefix = "STELLAR_CARBON_REPORTER_"

    host: str = "0.0.0.0"  # noqa: S104 — in a pod the service must listen on the pod IP
    """Address to listen on."""

    port: Annotated[int, values.port()] = 9090
    """HTTP port for the API and ``/metrics``; tooling relies on 9090."""

    default_page_size: Annotated[int, values.integer(low=1, high=MAX_PAGE_SIZE)] = 500
    """Nodes per page when ``/nodes`` is called without ``limit``."""

    inventory: Annotated[InventorySource, values.choice(InventorySource, _SOURCES)] = (
        InventorySource.KUBERNETES
    )
    """Where nodes and pods come from: the Kubernetes API or the built-in demo."""

    pod_namespace: str | None = None
    """Watch Stellar pods in this namespace only (the chart's least-privilege Role); unset
    watches every namespace."""

    pod_selector: Annotated[tuple[str, ...], values.label_selectors()] = STELLAR_POD_SELECTORS
    """Label selectors, any one matching, for the pods the API server sends: only Stellar pods
    are counted either way, so this only decides how many pods are listed and followed. The
    default matches the upstream operator's pods, Stellar apps by ``app.kubernetes.io/name`` and
    any pod with a ``stellar.org/role`` label."""

    node_metrics: Annotated[bool, values.boolean()] = False
    """Read node CPU usage from metrics.k8s.io for the power model (else 50 %)."""

    node_metrics_interval_seconds: Annotated[float, values.number(low=5)] = 60.0
    """How often to read metrics.k8s.io when enabled."""

    log_level: Annotated[str, values.upper_text()] = "INFO"
    """Python logging level."""

    carbon: CarbonSettings = Field(default_factory=CarbonSettings)
    """Carbon data settings (``STELLAR_CARBON_*``); ``extra_regions`` are reported too."""
