"""Carbon data settings, parsed once at startup from ``STELLAR_CARBON_*`` variables.

Which providers to ask and in what order, their endpoints and tokens, the cache (memory or Redis)
and how long values stay fresh or usable, how often the background refresh runs, and the demo
knobs of the mock provider. Both services read the same variables, so one Helm value configures
both. Every error names the variable that caused it; tokens stay wrapped in ``Secret``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import Path
from typing import Annotated, Self

from pydantic import ValidationInfo, model_validator

from shared.core.secret import Secret
from shared.settings import values
from shared.settings.env import EnvSettings, EnvValue, Rejected, from_environment

KNOWN_PROVIDERS = ("electricitymaps", "carbon-aware-sdk", "http", "mock", "static")
"""Provider names as they appear in provenance; ``settings.providers`` holds these."""

_PROVIDER_ALIASES = {
    "carbonaware": "carbon-aware-sdk",
    "carbon-aware": "carbon-aware-sdk",
    "custom": "http",
}
"""Other spellings accepted in ``STELLAR_CARBON_PROVIDERS``, matching the variable names; every
message names the provider they stand for."""

_ACCEPTED = ", ".join(KNOWN_PROVIDERS)


class EmissionFactorType(enum.StrEnum):
    """Electricity Maps' accounting: with upstream (lifecycle) emissions or combustion only."""

    LIFECYCLE = "lifecycle"
    DIRECT = "direct"


class CarbonAwareLocation(enum.StrEnum):
    """Which name of a region the Carbon Aware SDK WebAPI is asked about."""

    REGION = "region"  # the cloud region name (the SDK's Azure-style location config)
    ZONE = "zone"  # the Electricity Maps zone key (SDK backed by Electricity Maps)
    WATTTIME = "watttime"  # the WattTime balancing authority (SDK backed by WattTime)


def _provider_chain(text: str) -> tuple[str, ...]:
    chain = tuple(
        _PROVIDER_ALIASES.get(name, name) for name in values.names(lower=True).parse(text)
    )
    if not chain:
        raise Rejected(f"expected at least one provider; accepted: {_ACCEPTED}")
    unknown = [name for name in chain if name not in KNOWN_PROVIDERS]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise Rejected(f"unknown provider{plural} {listed}; accepted: {_ACCEPTED}")
    twice = next((name for i, name in enumerate(chain) if name in chain[:i]), None)
    if twice is not None:
        # Aliases are resolved first, so "custom,http" lands here too, under the canonical name.
        raise Rejected(f"provider {twice!r} is listed twice; accepted: each provider once")
    return chain


_PROVIDERS = EnvValue(
    f"a comma-separated chain of {_ACCEPTED} "
    f"(aliases: {', '.join(f'{a} for {c}' for a, c in _PROVIDER_ALIASES.items())})",
    _provider_chain,
)

_HOURS = values.integer(low=1, high=168)


class CarbonSettings(EnvSettings):
    """Effective carbon-data settings of one process. ``describe()`` is the loggable view."""

    env_prefix = "STELLAR_CARBON_"

    providers: Annotated[tuple[str, ...], _PROVIDERS] = ("mock", "static")
    """Provider chain in fallback order, by provider name (``carbonaware`` is accepted for
    ``carbon-aware-sdk`` and ``custom`` for ``http``). The default needs no key, so ``make run``
    just works."""

    electricitymaps_token: Annotated[Secret | None, values.secret()] = None
    """Electricity Maps ``auth-token``; required when ``electricitymaps`` is in the chain."""

    electricitymaps_url: Annotated[str, values.http_url()] = "https://api.electricitymaps.com/v3"
    """Electricity Maps API base URL (v3)."""

    emission_factor_type: Annotated[EmissionFactorType, values.choice(EmissionFactorType)] = (
        EmissionFactorType.LIFECYCLE
    )
    """Electricity Maps emission factors; keep one kind per ranking so regions compare fairly."""

    carbonaware_url: Annotated[str | None, values.http_url()] = None
    """Base URL of a GSF Carbon Aware SDK WebAPI; required for the ``carbon-aware-sdk`` provider."""

    carbonaware_location: Annotated[CarbonAwareLocation, values.choice(CarbonAwareLocation)] = (
        CarbonAwareLocation.REGION
    )
    """Which location name the WebAPI understands, depending on how it is configured."""

    custom_url: Annotated[str | None, values.http_url()] = None
    """Custom carbon API returning ``{"regions": [...]}``; required for the ``http`` provider."""

    custom_forecast_url: Annotated[str | None, values.http_url()] = None
    """Optional forecast document of the custom API; without it that provider has no forecast."""

    custom_token: Annotated[Secret | None, values.secret()] = None
    """Bearer token for the custom API, if it needs one."""

    redis_url: Annotated[Secret | None, values.redis_url()] = None
    """``redis://[:password@]host[:port][/db]`` (or ``rediss://``) to share values, and therefore
    one API quota, between replicas. Unset: an in-process memory cache."""

    current_ttl: Annotated[float, values.seconds()] = 300.0
    """Seconds a current-intensity value counts as fresh; providers update hourly or faster."""

    forecast_ttl: Annotated[float, values.seconds()] = 3600.0
    """Seconds a forecast counts as fresh; forecasts are fetched at most this often."""

    max_stale: Annotated[float, values.seconds()] = 21600.0
    """Seconds a value may still be served (flagged stale) when its provider fails, before the
    chain moves on to the next provider. At least ``current_ttl``."""

    refresh_interval: Annotated[float, values.seconds()] = 60.0
    """Seconds between background refresh cycles."""

    horizon_hours: Annotated[int, _HOURS] = 24
    """How far ahead the expected intensity looks: the life that matters for a read replica."""

    forecast_hours: Annotated[int, _HOURS] = 48
    """How many hours of forecast the refresher asks for (at least the horizon), so the reporter
    can show more than the ranking uses."""

    http_timeout: Annotated[float, values.seconds()] = 10.0
    """Seconds one upstream request may take, connection included."""

    backoff_base: Annotated[float, values.seconds()] = 60.0
    """First back-off after a provider failure, in seconds; doubles per consecutive failure."""

    backoff_max: Annotated[float, values.seconds()] = 1800.0
    """Longest back-off, in seconds (a ``Retry-After`` may still ask for longer). At least
    ``backoff_base``."""

    region_overrides: Annotated[Path | None, values.path()] = None
    """YAML/JSON file adding or overriding regions (on-prem sites, custom labels)."""

    region_label: str | None = None
    """Extra node label key to read the region from, after the well-known topology labels."""

    mock_clock: Annotated[datetime | None, values.timestamp()] = None
    """Pin the time (RFC 3339) for demos and tests; None follows the real clock."""

    mock_seed: Annotated[int, values.integer(low=0, high=2**32 - 1)] = 0
    """Seed of the mock provider's noise, so demo numbers are reproducible."""

    extra_regions: Annotated[tuple[str, ...], values.names(lower=False)] = ()
    """Regions always tracked, whether or not the cluster has nodes there."""

    @model_validator(mode="after")
    def _check_combinations(self, info: ValidationInfo) -> Self:
        if not from_environment(info):
            return self
        chain = self.variable("providers")
        needed: tuple[tuple[str, str, object], ...] = (
            ("electricitymaps", "electricitymaps_token", self.electricitymaps_token),
            ("carbon-aware-sdk", "carbonaware_url", self.carbonaware_url),
            ("http", "custom_url", self.custom_url),
        )
        for provider, field, given in needed:
            if provider in self.providers and given is None:
                raise Rejected(f"required when {provider!r} is in {chain}", field=field)
        at_least: tuple[tuple[str, float, str, float, str], ...] = (
            ("max_stale", self.max_stale, "current_ttl", self.current_ttl, " s"),
            ("forecast_hours", self.forecast_hours, "horizon_hours", self.horizon_hours, ""),
            ("backoff_max", self.backoff_max, "backoff_base", self.backoff_base, " s"),
        )
        for field, value, other, bound, unit in at_least:
            if value < bound:
                raise Rejected(
                    f"expected at least {self.variable(other)} ({bound:g}{unit}), got {value:g}",
                    field=field,
                )
        return self
