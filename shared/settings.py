"""Carbon data settings, parsed once at startup from ``STELLAR_CARBON_*`` variables.

Which providers to ask and in what order, their endpoints and tokens, the cache (memory or Redis)
and how long values stay fresh or usable, how often the background refresh runs, and the demo
knobs of the mock provider. Both services read the same variables, so one Helm value configures
both. Every error names the variable that caused it; tokens stay wrapped in ``Secret``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from shared.core.errors import ConfigError
from shared.core.secret import Secret

PREFIX = "STELLAR_CARBON_"

KNOWN_PROVIDERS = ("electricitymaps", "carbon-aware-sdk", "http", "mock", "static")
"""Provider names as they appear in provenance; ``settings.providers`` holds these."""

_PROVIDER_ALIASES = {
    "carbonaware": "carbon-aware-sdk",
    "carbon-aware": "carbon-aware-sdk",
    "custom": "http",
}
"""Other spellings accepted in ``STELLAR_CARBON_PROVIDERS``, matching the variable names."""

_E = TypeVar("_E", bound=enum.StrEnum)


class EmissionFactorType(enum.StrEnum):
    """Electricity Maps' accounting: with upstream (lifecycle) emissions or combustion only."""

    LIFECYCLE = "lifecycle"
    DIRECT = "direct"


class CarbonAwareLocation(enum.StrEnum):
    """Which name of a region the Carbon Aware SDK WebAPI is asked about."""

    REGION = "region"  # the cloud region name (the SDK's Azure-style location config)
    ZONE = "zone"  # the Electricity Maps zone key (SDK backed by Electricity Maps)
    WATTTIME = "watttime"  # the WattTime balancing authority (SDK backed by WattTime)


@dataclass(frozen=True, slots=True)
class CarbonSettings:
    """Effective carbon-data settings of one process. ``describe()`` is the loggable view."""

    providers: tuple[str, ...] = ("mock", "static")
    """Provider chain in fallback order, by provider name (``carbonaware`` is accepted for
    ``carbon-aware-sdk`` and ``custom`` for ``http``). The default needs no key, so ``make run``
    just works."""

    electricitymaps_token: Secret | None = None
    """Electricity Maps ``auth-token``; required when ``electricitymaps`` is in the chain."""

    electricitymaps_url: str = "https://api.electricitymaps.com/v3"
    """Electricity Maps API base URL (v3)."""

    emission_factor_type: EmissionFactorType = EmissionFactorType.LIFECYCLE
    """Electricity Maps emission factors; keep one kind per ranking so regions compare fairly."""

    carbonaware_url: str | None = None
    """Base URL of a GSF Carbon Aware SDK WebAPI; required for the ``carbon-aware-sdk`` provider."""

    carbonaware_location: CarbonAwareLocation = CarbonAwareLocation.REGION
    """Which location name the WebAPI understands, depending on how it is configured."""

    custom_url: str | None = None
    """Custom carbon API returning ``{"regions": [...]}``; required for the ``http`` provider."""

    custom_forecast_url: str | None = None
    """Optional forecast document of the custom API; without it that provider has no forecast."""

    custom_token: Secret | None = None
    """Bearer token for the custom API, if it needs one."""

    redis_url: Secret | None = None
    """``redis://[:password@]host[:port][/db]`` (or ``rediss://``) to share values, and therefore
    one API quota, between replicas. Unset: an in-process memory cache."""

    current_ttl: float = 300.0
    """Seconds a current-intensity value counts as fresh; providers update hourly or faster."""

    forecast_ttl: float = 3600.0
    """Seconds a forecast counts as fresh; forecasts are fetched at most this often."""

    max_stale: float = 21600.0
    """Seconds a value may still be served (flagged stale) when its provider fails, before the
    chain moves on to the next provider."""

    refresh_interval: float = 60.0
    """Seconds between background refresh cycles."""

    horizon_hours: int = 24
    """How far ahead the expected intensity looks: the life that matters for a read replica."""

    forecast_hours: int = 48
    """How many hours of forecast the refresher asks for (at least the horizon), so the reporter
    can show more than the ranking uses."""

    http_timeout: float = 10.0
    """Seconds one upstream request may take, connection included."""

    backoff_base: float = 60.0
    """First back-off after a provider failure, in seconds; doubles per consecutive failure."""

    backoff_max: float = 1800.0
    """Longest back-off, in seconds (a ``Retry-After`` may still ask for longer)."""

    region_overrides: Path | None = None
    """YAML/JSON file adding or overriding regions (on-prem sites, custom labels)."""

    region_label: str | None = None
    """Extra node label key to read the region from, after the well-known topology labels."""

    mock_clock: datetime | None = None
    """Pin the time (RFC 3339) for demos and tests; None follows the real clock."""

    mock_seed: int = 0
    """Seed of the mock provider's noise, so demo numbers are reproducible."""

    extra_regions: tuple[str, ...] = ()
    """Regions always tracked, whether or not the cluster has nodes there."""

    def describe(self) -> dict[str, Any]:
        """Plain values for the one startup log line; secrets only as ``set``/``unset``."""
        described: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "redis_url":
                value = _redacted_redis_url(value)
            elif isinstance(value, Secret) or item.name.endswith("_token"):
                value = "set" if value else "unset"
            elif isinstance(value, enum.Enum | Path):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            described[item.name] = value
        return described

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CarbonSettings:
        """Parse ``STELLAR_CARBON_*``; unset or empty variables keep their defaults."""
        read = _Reader(env)
        defaults = cls()
        providers = tuple(
            _PROVIDER_ALIASES.get(name, name)
            for name in read.names("PROVIDERS", defaults.providers)
        )
        _check_providers(providers)
        token = read.secret("ELECTRICITYMAPS_TOKEN")
        if "electricitymaps" in providers and token is None:
            raise ConfigError(
                f"{PREFIX}ELECTRICITYMAPS_TOKEN: required when 'electricitymaps' is in "
                f"{PREFIX}PROVIDERS"
            )
        carbonaware_url = read.url("CARBONAWARE_URL")
        if "carbon-aware-sdk" in providers and carbonaware_url is None:
            raise ConfigError(
                f"{PREFIX}CARBONAWARE_URL: required when 'carbonaware' is in {PREFIX}PROVIDERS"
            )
        custom_url = read.url("CUSTOM_URL")
        if "http" in providers and custom_url is None:
            raise ConfigError(f"{PREFIX}CUSTOM_URL: required when 'custom' is in {PREFIX}PROVIDERS")
        settings = cls(
            providers=providers,
            electricitymaps_token=token,
            electricitymaps_url=read.url("ELECTRICITYMAPS_URL") or defaults.electricitymaps_url,
            emission_factor_type=read.choice(
                "EMISSION_FACTOR_TYPE", EmissionFactorType, defaults.emission_factor_type
            ),
            carbonaware_url=carbonaware_url,
            carbonaware_location=read.choice(
                "CARBONAWARE_LOCATION", CarbonAwareLocation, defaults.carbonaware_location
            ),
            custom_url=custom_url,
            custom_forecast_url=read.url("CUSTOM_FORECAST_URL"),
            custom_token=read.secret("CUSTOM_TOKEN"),
            redis_url=read.redis_url("REDIS_URL"),
            current_ttl=read.seconds("CURRENT_TTL", defaults.current_ttl),
            forecast_ttl=read.seconds("FORECAST_TTL", defaults.forecast_ttl),
            max_stale=read.seconds("MAX_STALE", defaults.max_stale),
            refresh_interval=read.seconds("REFRESH_INTERVAL", defaults.refresh_interval),
            horizon_hours=read.integer("HORIZON_HOURS", defaults.horizon_hours, low=1, high=168),
            forecast_hours=read.integer("FORECAST_HOURS", defaults.forecast_hours, low=1, high=168),
            http_timeout=read.seconds("HTTP_TIMEOUT", defaults.http_timeout),
            backoff_base=read.seconds("BACKOFF_BASE", defaults.backoff_base),
            backoff_max=read.seconds("BACKOFF_MAX", defaults.backoff_max),
            region_overrides=read.path("REGION_OVERRIDES"),
            region_label=read.optional("REGION_LABEL"),
            mock_clock=read.timestamp("MOCK_CLOCK"),
            mock_seed=read.integer("MOCK_SEED", defaults.mock_seed, low=0, high=2**32 - 1),
            extra_regions=read.names("EXTRA_REGIONS", defaults.extra_regions, lower=False),
        )
        _check_combinations(settings)
        return settings


def _check_providers(providers: tuple[str, ...]) -> None:
    if not providers:
        raise ConfigError(f"{PREFIX}PROVIDERS: name at least one provider")
    unknown = [name for name in providers if name not in KNOWN_PROVIDERS]
    if unknown:
        raise ConfigError(
            f"{PREFIX}PROVIDERS: unknown provider(s) {', '.join(unknown)}; "
            f"known: {', '.join(KNOWN_PROVIDERS)}"
        )
    if len(set(providers)) != len(providers):
        raise ConfigError(f"{PREFIX}PROVIDERS: a provider is listed twice")


def _check_combinations(settings: CarbonSettings) -> None:
    if settings.max_stale < settings.current_ttl:
        raise ConfigError(
            f"{PREFIX}MAX_STALE: must be at least {PREFIX}CURRENT_TTL ({settings.current_ttl:g} s)"
        )
    if settings.forecast_hours < settings.horizon_hours:
        raise ConfigError(
            f"{PREFIX}FORECAST_HOURS: must be at least {PREFIX}HORIZON_HOURS "
            f"({settings.horizon_hours})"
        )
    if settings.backoff_max < settings.backoff_base:
        raise ConfigError(
            f"{PREFIX}BACKOFF_MAX: must be at least {PREFIX}BACKOFF_BASE "
            f"({settings.backoff_base:g} s)"
        )


def _redacted_redis_url(url: Secret | None) -> str:
    """``redis://host:6379/0`` without the password, or ``unset``."""
    if url is None:
        return "unset"
    parts = urlsplit(url.reveal())
    port = f":{parts.port}" if parts.port else ""
    auth = ":***@" if parts.password else ""
    return f"{parts.scheme}://{auth}{parts.hostname}{port}{parts.path}"


class _Reader:
    """Reads one prefixed variable at a time; errors name the variable, never a secret's value."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def optional(self, name: str) -> str | None:
        value = self._env.get(PREFIX + name, "").strip()
        return value or None

    def secret(self, name: str) -> Secret | None:
        value = self.optional(name)
        return Secret(value) if value is not None else None

    def names(self, name: str, default: tuple[str, ...], *, lower: bool = True) -> tuple[str, ...]:
        value = self.optional(name)
        if value is None:
            return default
        items = (item.strip() for item in value.split(","))
        return tuple(item.lower() if lower else item for item in items if item)

    def choice(self, name: str, kind: type[_E], default: _E) -> _E:
        value = self.optional(name)
        if value is None:
            return default
        try:
            return kind(value.lower())
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise ConfigError(f"{PREFIX}{name}: expected one of {allowed}, got {value!r}") from None

    def url(self, name: str) -> str | None:
        value = self.optional(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{PREFIX}{name}: expected an http(s) URL with a host")
        if parts.password:
            raise ConfigError(f"{PREFIX}{name}: put credentials in the token variable, not the URL")
        return value.rstrip("/")

    def redis_url(self, name: str) -> Secret | None:
        value = self.optional(name)
        if value is None:
            return None
        # The URL may carry a password, so the message never quotes it.
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}: not a valid URL") from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ConfigError(f"{PREFIX}{name}: expected redis://host[:port][/db] or rediss://")
        if port == 0:
            raise ConfigError(f"{PREFIX}{name}: port must be 1-65535")
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ConfigError(f"{PREFIX}{name}: the database must be a number, e.g. /0")
        return Secret(value)

    def seconds(self, name: str, default: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}: expected seconds, got {value!r}") from None
        if not number > 0 or number == float("inf"):
            raise ConfigError(f"{PREFIX}{name}: must be a positive number of seconds")
        return number

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}: expected an integer, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(f"{PREFIX}{name}: must be between {low} and {high}, got {number}")
        return number

    def path(self, name: str) -> Path | None:
        value = self.optional(name)
        return Path(value) if value is not None else None

    def timestamp(self, name: str) -> datetime | None:
        value = self.optional(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"{PREFIX}{name}: expected an RFC 3339 time like 2026-11-26T12:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise ConfigError(f"{PREFIX}{name}: the time needs a zone offset, e.g. Z")
        return moment.astimezone(UTC)
