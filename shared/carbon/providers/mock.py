"""A deterministic carbon provider with realistic daily shapes, for ``make run``, demos and tests.

For an hour ``t`` of a zone::

    value(t) = annual mean * seasonal level * hour-of-day multiplier * day level * hourly noise

* annual mean: the region's catalog value (``RegionInfo.annual_g_per_kwh``), else the zone's
  measured 2024 mean; a region with neither cannot be served (``UnknownZone``), since inventing a
  number would be worse than admitting there is none;
* seasonal level and hour-of-day multiplier: the zone's profile from ``shared.carbon.profiles`` in
the
  zone's local standard time (the data's offset for measured zones, else ``round(longitude / 15)``,
  else UTC);
* day level: lognormal, correlated from one day to the next, blended between day midpoints;
* hourly noise: lognormal AR(1), correlated from one hour to the next.

All randomness is a hash of ``(seed, zone, hour or day index)``: no global RNG state, the same time
and seed always give the same answer, and every instance agrees. Both noise factors have mean 1, so
the model's long-run mean is the annual mean.

Forecasts are the later "actual" (what ``current`` will say at that hour) times an error factor
whose log is a random walk over lead time: about 3 % after 1 h, 15 % after 24 h, and smooth from
one lead to the next, as real forecasts are.

Values are marked ``estimated`` (they are a model) with live freshness. The renewable share follows
the zone's measured profile, falling when the noise makes the grid dirtier; zones without their own
data report none.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

from shared.carbon.profiles import GridProfile, shape_for_zone
from shared.core.clock import Clock, utcnow
from shared.core.errors import UnknownZone
from shared.core.models import Forecast, ForecastPoint, Intensity, Provenance, RegionInfo

FLOOR_G_PER_KWH = 1.0
"""No grid is carbon-free over its life cycle; keeps every value strictly positive."""

FORECAST_ERROR_PER_SQRT_HOUR = 0.03
"""Log-scale standard deviation of the forecast error after one hour; grows with √lead."""

MAX_FORECAST_HOURS = 168

# Bounds on the measured noise parameters. The hourly spread is capped so demo numbers stay calm
# (the day level carries most real variability); the hourly correlation is kept high because real
# residuals are heavy-tailed (long calm runs, rare jumps), which low-rho noise renders as jitter.
_HOUR_SD = (0.005, 0.08)
_HOUR_RHO = (0.85, 0.97)
_DAY_SD = (0.0, 0.30)
_DAY_RHO = (0.0, 0.9)
_AR1_TAIL = 0.005  # truncate the AR(1) sum where the weight of older shocks falls below this

_NORMAL = NormalDist()
_EPOCH = datetime(1970, 1, 1)
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, slots=True)
class _ZoneModel:
    key: str
    profile: GridProfile
    annual_g: float
    utc_offset_hours: float
    renewable_known: bool


@dataclass(frozen=True, slots=True)
class _Hour:
    g_per_kwh: float
    renewable_pct: float | None


class MockProvider:
    """Realistic, reproducible intensities and forecasts for any zone with a known annual mean."""

    name = "mock"

    def __init__(self, *, clock: Clock = utcnow, seed: int = 0) -> None:
        self._clock = clock
        self._seed = seed

    def location_key(self, region: RegionInfo) -> str | None:
        model = self._model(region)
        return None if model is None else model.key

    async def current(self, region: RegionInfo) -> Intensity:
        model = self._require(region)
        now = self._clock()
        hour = _hour_index(now)
        (reading,) = self._hours(model, hour, 1)
        return Intensity(
            zone=model.key,
            g_per_kwh=round(reading.g_per_kwh, 1),
            observed_at=_hour_start(hour),
            provenance=Provenance(provider=self.name, fetched_at=now),
            estimated=True,
            renewable_pct=reading.renewable_pct,
        )

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast:
        """Hourly points from the next full hour; ``hours`` is clamped to 0…MAX_FORECAST_HOURS."""
        model = self._require(region)
        now = self._clock()
        issued = _hour_index(now)
        count = max(0, min(hours, MAX_FORECAST_HOURS))
        actuals = self._hours(model, issued + 1, count)
        stream = f"{self._seed}|forecast|{model.key}|{issued}"
        walk = 0.0
        points = []
        for lead, actual in enumerate(actuals, start=1):
            walk += self._normal(stream, lead)
            error_sd = FORECAST_ERROR_PER_SQRT_HOUR * math.sqrt(lead)
            log_error = FORECAST_ERROR_PER_SQRT_HOUR * walk - error_sd**2 / 2
            value = max(FLOOR_G_PER_KWH, actual.g_per_kwh * math.exp(log_error))
            points.append(
                ForecastPoint(starts_at=_hour_start(issued + lead), g_per_kwh=round(value, 1))
            )
        return Forecast(
            zone=model.key,
            generated_at=_hour_start(issued),
            points=tuple(points),
            provenance=Provenance(provider=self.name, fetched_at=now),
        )

    async def close(self) -> None:
        return None

    def _model(self, region: RegionInfo) -> _ZoneModel | None:
        key = region.zone or region.key
        shape = shape_for_zone(key)
        annual = region.annual_g_per_kwh
        if annual is None or annual <= 0:
            annual = shape.profile.annual_mean_g if shape.own_data else None
        if annual is None:
            return None
        if shape.own_data:
            offset = shape.profile.utc_offset_hours
        elif region.longitude is not None:
            offset = float(round(region.longitude / 15))
        else:
            offset = 0.0
        return _ZoneModel(key, shape.profile, annual, offset, renewable_known=shape.own_data)

    def _require(self, region: RegionInfo) -> _ZoneModel:
        model = self._model(region)
        if model is None:
            raise UnknownZone(
                self.name, f"no annual mean or measured profile for {region.zone or region.key}"
            )
        return model

    def _hours(self, model: _ZoneModel, first: int, count: int) -> list[_Hour]:
        """The modelled hours ``first`` … ``first + count - 1`` (hour indexes since the epoch)."""
        if count <= 0:
            return []
        variability = model.profile.variability
        hour_sd = _clamp(variability.hour_sd, _HOUR_SD)
        day_sd = _clamp(variability.day_sd, _DAY_SD)
        hour_noise = self._ar1(
            f"{self._seed}|hour|{model.key}", first, count, _clamp(variability.hour_rho, _HOUR_RHO)
        )
        # Day k's level sits at local noon of day k; hours between two noons blend the two, so
        # the level never jumps at midnight.
        local_hours = [first + i + model.utc_offset_hours for i in range(count)]
        day_positions = [(hour + 0.5 - 12) / 24 for hour in local_hours]
        first_day = math.floor(day_positions[0])
        day_noise = self._ar1(
            f"{self._seed}|day|{model.key}",
            first_day,
            math.floor(day_positions[-1]) - first_day + 2,
            _clamp(variability.day_rho, _DAY_RHO),
        )
        day_levels = [math.exp(day_sd * z - day_sd**2 / 2) for z in day_noise]

        hours = []
        for local_hour, day_position, noise in zip(
            local_hours, day_positions, hour_noise, strict=True
        ):
            day = math.floor(day_position)
            weight = day_position - day
            index = day - first_day
            day_level = (1 - weight) * day_levels[index] + weight * day_levels[index + 1]
            factor = day_level * math.exp(hour_sd * noise - hour_sd**2 / 2)
            shape, renewable = model.profile.shape_at(_EPOCH + timedelta(hours=local_hour))
            value = max(FLOOR_G_PER_KWH, model.annual_g * shape * factor)
            if renewable is not None and model.renewable_known:
                # A dirtier-than-usual hour is one with more fossil generation.
                renewable = round(min(100.0, max(0.0, 100 - (100 - renewable) * factor)), 1)
            else:
                renewable = None
            hours.append(_Hour(value, renewable))
        return hours

    def _ar1(self, stream: str, first: int, count: int, rho: float) -> list[float]:
        """Standard-normal AR(1) values for indexes ``first`` … ``first + count - 1``.

        Each value is a truncated weighted sum of hashed shocks, so any index can be computed
        without the series' history and consecutive indexes share most of their shocks.
        """
        window = math.ceil(math.log(_AR1_TAIL) / math.log(rho)) if rho > 0 else 0
        shocks = [self._normal(stream, i) for i in range(first - window, first + count)]
        scale = 1 / math.sqrt(sum(rho ** (2 * k) for k in range(window + 1)))
        oldest_weight = rho ** (window + 1)
        total = sum(rho**k * shocks[window - k] for k in range(window + 1))
        values = [total * scale]
        for j in range(1, count):
            total = rho * total + shocks[window + j] - oldest_weight * shocks[j - 1]
            values.append(total * scale)
        return values

    @staticmethod
    def _normal(stream: str, index: int) -> float:
        digest = hashlib.blake2b(f"{stream}|{index}".encode(), digest_size=8).digest()
        uniform = ((int.from_bytes(digest, "big") >> 11) + 0.5) / 2.0**53
        return _NORMAL.inv_cdf(uniform)


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(high, max(low, value))


def _hour_index(at: datetime) -> int:
    return math.floor(at.timestamp() / _SECONDS_PER_HOUR)


def _hour_start(index: int) -> datetime:
    return datetime.fromtimestamp(index * _SECONDS_PER_HOUR, tz=UTC)
