"""The Karmada controller's settings, parsed once at startup from ``STELLAR_CARBON_KARMADA_*``.

The carbon data settings (provider chain, tokens, cache, ranking horizon, region overrides) are the
carbon library's ``STELLAR_CARBON_*`` ones, shared with the webhook, reporter and tiers, so member
clusters are ranked on the same numbers that steer pods inside a cluster.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Annotated, Self

from pydantic import Field, ValidationInfo, model_validator

from multicluster.decide import Rules
from shared.settings import CarbonSettings, values
from shared.settings.env import EnvSettings, Rejected, from_environment

__all__ = ["KarmadaMode", "KarmadaSettings"]


class KarmadaMode(enum.StrEnum):
    """Whether the controller writes weights or only says which it would write."""

    DRY_RUN = "dry-run"  # annotations, events and metrics only: the safe way to start
    APPLY = "apply"  # write the staticWeightList (and the annotations)


class KarmadaSettings(EnvSettings):
    """Everything the Karmada controller needs beyond the carbon library. Holds no secrets
    itself: the Karmada API server's credentials are in the kubeconfig file."""

    env_prefix = "STELLAR_CARBON_KARMADA_"

    mode: Annotated[KarmadaMode, values.choice(KarmadaMode)] = KarmadaMode.DRY_RUN
    """``dry-run`` records the weights it would write (annotation, event, metric) and changes no
    placement; ``apply`` writes them."""

    kubeconfig: str | None = None
    """Kubeconfig of the Karmada API server (not the cluster the controller runs in); None means
    ``KUBECONFIG`` or ``~/.kube/config``."""

    label_selector: str = ""
    """Only policies with these labels (``key=value,key2``, as ``kubectl -l``); empty: every
    policy that carries the opt-in annotation."""

    interval: Annotated[float, values.seconds()] = 60.0
    """Seconds between two cycles; each reads memory only (clusters, policies, bindings, carbon
    data), and a policy change wakes a cycle at once."""

    margin: Annotated[float, values.number(low=0.0)] = 0.10
    """Least relative drop in a policy's expected emissions worth re-dividing its replicas."""

    dwell: Annotated[float, values.number(low=0.0)] = 3600.0
    """Least seconds between two re-weighings of one policy."""

    max_moved_share: Annotated[float, values.number(low=0.01)] = 0.5
    """Most of a policy's replicas one re-weighing may move (0.01-1); one replica always may."""

    floor_weight: Annotated[int, values.integer(low=0, high=100)] = 1
    """Least weight of every eligible cluster (the greenest has 100). 0 lets clusters much
    dirtier than the greenest drop out of the list, and Karmada then gives them no replicas."""

    weight_exponent: Annotated[float, values.number(low=0.5)] = 4.0
    """Weights fall as ``(greenest / intensity) ** exponent``; docs/karmada.md has the measurement
    behind the default."""

    lease_name: str = "stellar-carbon-karmada"
    """``coordination.k8s.io/v1`` Lease on the Karmada API server that elects one active
    replica."""

    lease_namespace: str = "karmada-system"
    """Namespace of that Lease (and of the events about ClusterPropagationPolicies)."""

    lease_duration: Annotated[float, values.seconds()] = 15.0
    """Seconds a leader holds the Lease without renewing it; the standby takes over after."""

    health_port: Annotated[int, values.port()] = 8082
    """Plain-HTTP port for ``/healthz``, ``/readyz`` and ``/metrics``."""

    bind_address: str = "0.0.0.0"  # noqa: S104 - probes and Prometheus reach the pod IP
    """Address the health site listens on."""

    log_level: Annotated[str, values.upper_text()] = "INFO"
    """Python logging level."""

    carbon: CarbonSettings = Field(default_factory=CarbonSettings)
    """Carbon data settings (``STELLAR_CARBON_*``)."""

    @property
    def rules(self) -> Rules:
        """The decision rules these settings describe."""
        return Rules(
            margin=self.margin,
            dwell=timedelta(seconds=self.dwell),
            max_moved_share=self.max_moved_share,
            floor=self.floor_weight,
            exponent=self.weight_exponent,
        )

    @model_validator(mode="after")
    def _check_combinations(self, info: ValidationInfo) -> Self:
        if from_environment(info) and self.max_moved_share > 1:
            raise Rejected(
                f"expected a share from 0.01 to 1, got '{self.max_moved_share:g}'",
                field="max_moved_share",
            )
        return self
