"""The tier component's settings, parsed once at startup from ``STELLAR_CARBON_TIERS_*`` variables.

The carbon data settings (provider chain, tokens, cache, ranking horizon) are the carbon library's
``STELLAR_CARBON_*`` ones, shared with the webhook and reporter, so tiers are cut from the same
ranking the webhook steers new pods with.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Annotated, Self

from pydantic import Field, ValidationInfo, model_validator

from shared.scoring.tiers import TierPolicy
from shared.settings import CarbonSettings, values
from shared.settings.env import EnvSettings, Rejected, from_environment

__all__ = ["TierMode", "TiersSettings"]


class TierMode(enum.StrEnum):
    """Whether the component changes node labels or only says what it would change."""

    DRY_RUN = "dry-run"  # log, export metrics, touch nothing: the safe way to start
    LABEL = "label"  # write the tier label on nodes (and record an Event per change)


class TiersSettings(EnvSettings):
    """Everything the tier component needs beyond the carbon library. Holds no secrets itself."""

    env_prefix = "STELLAR_CARBON_TIERS_"

    mode: Annotated[TierMode, values.choice(TierMode)] = TierMode.DRY_RUN
    """``dry-run`` logs and exports the tiers it would write; ``label`` writes them on nodes."""

    interval: Annotated[float, values.seconds()] = 60.0
    """Seconds between two cycles (rank, plan, label). Each cycle reads memory only; a label
    that failed or a node that joined is (re)written on the next one."""

    band: Annotated[float, values.number(low=0.0)] = 0.10
    """Tier 0 holds the regions within this fraction of the greenest expected intensity."""

    step: Annotated[float, values.number(low=1.0)] = 1.25
    """Each tier's upper bound is this many times the previous one's; above 1."""

    max_tier: Annotated[int, values.integer(low=1, high=99)] = 9
    """The dirtiest tier; every region beyond it shares it."""

    margin: Annotated[float, values.number(low=0.0)] = 0.10
    """How far past a tier boundary a region's value must be before it changes tier."""

    dwell: Annotated[float, values.number(low=0.0)] = 7200.0
    """Least seconds between two changes of one region's tier: every change may evict pods."""

    max_node_changes_per_hour: Annotated[int, values.integer(low=1)] = 50
    """Most node labels changed from one tier to another in any hour, across regions."""

    health_port: Annotated[int, values.port()] = 8081
    """Plain-HTTP port for ``/healthz``, ``/readyz`` and ``/metrics``."""

    bind_address: str = "0.0.0.0"  # noqa: S104 - probes and Prometheus reach the pod IP
    """Address the health site listens on."""

    kubeconfig: str | None = None
    """Kubeconfig path outside a cluster; None means the service account inside a pod, else
    ``KUBECONFIG`` or ``~/.kube/config``."""

    log_level: Annotated[str, values.upper_text()] = "INFO"
    """Python logging level."""

    carbon: CarbonSettings = Field(default_factory=CarbonSettings)
    """Carbon data settings (``STELLAR_CARBON_*``)."""

    @property
    def policy(self) -> TierPolicy:
        """The tier maths' policy these settings describe."""
        return TierPolicy(
            band=self.band,
            step=self.step,
            max_tier=self.max_tier,
            margin=self.margin,
            dwell=timedelta(seconds=self.dwell),
            max_node_changes_per_hour=self.max_node_changes_per_hour,
        )

    @model_validator(mode="after")
    def _check_combinations(self, info: ValidationInfo) -> Self:
        if from_environment(info) and self.step <= 1:
            raise Rejected(f"expected a number above 1, got '{self.step:g}'", field="step")
        return self
