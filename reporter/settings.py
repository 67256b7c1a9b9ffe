"""The reporter's settings, parsed once at startup from the environment.

``STELLAR_CARBON_REPORTER_*`` holds what is specific to serving the sustainability API; the carbon
data settings (provider chain, tokens, cache, extra regions, ranking horizon) are the carbon
library's ``STELLAR_CARBON_*`` ones, shared with the webhook so one Helm value configures both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field

from shared.cluster.pods import STELLAR_POD_SELECTORS
from shared.core.secret import Secret
from shared.settings import CarbonSettings, values
from shared.settings.env import EnvSettings, EnvValue, Rejected
from shared.settings.inventory import InventorySource

__all__ = ["MAX_PAGE_SIZE", "InventorySource", "ReporterSettings"]

MAX_PAGE_SIZE = 5000

_SOURCES = (InventorySource.KUBERNETES, InventorySource.DEMO)
"""The reporter reads the cluster or shows the demo; a static node file is the webhook's."""


DEFAULT_HISTORY_PATH = "/var/lib/stellar-carbon/history.db"
"""Where the image and the chart keep the SQLite history (a volume mounted there)."""
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def _history_location(text: str) -> Secret:
    if "://" not in text:
        return Secret(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(text) from None
    if parts.scheme not in _POSTGRES_SCHEMES or not parts.hostname or port == 0:
        raise Rejected("expected an SQLite file path or a postgresql://user@host[:port]/db URL")
    if not parts.path.strip("/"):
        raise Rejected("expected a database name in the postgresql:// URL")
    return Secret(text)


def redacted_history_location(location: Secret) -> str:
    """The path, or the URL without its password."""
    text = location.reveal()
    if "://" not in text:
        return text
    parts = urlsplit(text)
    user = f"{parts.username}{':***' if parts.password else ''}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{parts.hostname}{port}{parts.path}"


# A postgresql:// URL may carry a password: never quoted, logged without it.
_HISTORY_LOCATION = EnvValue(
    "an SQLite file path or a postgresql://user[:password]@host[:port]/db URL",
    _history_location,
    secret=True,
    show=redacted_history_location,
)


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

    history_url: Annotated[Secret, _HISTORY_LOCATION] = Secret(DEFAULT_HISTORY_PATH)
    """Where the hourly sustainability history is kept: an SQLite file (one replica's own), or
    a ``postgresql://`` URL so that several replicas share one history."""

    history_interval_seconds: Annotated[int, values.integer(low=60, high=3600)] = 3600
    """Seconds between two accounting samples; each is filed under its UTC hour and the first
    of an hour is kept, so a shorter period records an hour missed at a restart sooner. At most
    an hour, or hours would go unsampled."""

    history_retention_days: Annotated[int, values.integer(low=1, high=3660)] = 400
    """Days of history kept; older hours are deleted and ranges reaching further are refused."""

    instruments_file: Annotated[Path | None, values.path()] = None
    """YAML file of contractual instruments (certificates, PPAs, supplier factors, residual
    mixes) per region, for the report's separate market-based column; unset: location-based
    only."""

    karmada_url: Annotated[str | None, values.http_url()] = None
    """The Karmada controller's health site (``http://<service>:8082``): its per-policy weights,
    replicas and intensities are served at ``/api/v1/sustainability/karmada``; unset: not
    polled, and that path answers 404."""

    karmada_interval_seconds: Annotated[float, values.number(low=5)] = 60.0
    """How often to read the Karmada controller's policies; the last document read is served,
    marked stale once older than three of these."""

    log_level: Annotated[str, values.upper_text()] = "INFO"
    """Python logging level."""

    carbon: CarbonSettings = Field(default_factory=CarbonSettings)
    """Carbon data settings (``STELLAR_CARBON_*``); ``extra_regions`` are reported too."""
