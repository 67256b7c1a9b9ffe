"""Hourly grid intensities to replay, and what a forecaster would have said at each hour.

Measured zones replay Electricity Maps' hourly lifecycle intensities of the year the replay starts
in (2024 or 2023), shipped in ``shared/data`` (Electricity Maps, ODbL 1.0; see that folder's
README). Zones the dataset lacks are filled by the mock provider's model
(``shared.carbon.providers.mock``), hour by hour, so every region of the benchmark fleet has an
"actual" series.

A forecast issued at hour ``h`` is the later actual value times a log-normal error whose log is a
random walk over lead time, with the mock provider's spread (about 3 % after 1 h, 15 % after 24 h).
The error is a hash of ``(seed, zone, h)``: the same hour always gets the same forecast, in every
policy and in the real-scheduler replay alike.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from types import MappingProxyType

from shared.carbon.profiles import DATASET_ALIASES
from shared.carbon.providers.mock import FORECAST_ERROR_PER_SQRT_HOUR, MockProvider
from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.core.models import Forecast, ForecastPoint, Intensity, Provenance, RegionInfo

DATA_YEARS = (2023, 2024)
"""Years of hourly data shipped in ``shared/data``."""
MODELLED = "mock-model"

ZONE_DATA_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        **DATASET_ALIASES,
        # Sao Paulo lies in Brazil's Central-South subsystem (the API's BR-CS); the hourly dataset
        # publishes the state's grid as BR-SP.
        "BR-CS": "BR-SP",
    }
)
"""Catalog zone key → the key its hourly series has in the dataset."""

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _Series:
    first: datetime
    values: tuple[float, ...]


def data_file(year: int) -> str:
    """The hourly data file of ``year`` in ``shared/data``."""
    if year not in DATA_YEARS:
        raise ValueError(f"no hourly grid data for {year}; shipped: {DATA_YEARS}")
    return f"electricitymaps-hourly-{year}.csv.gz"


@functools.cache
def _dataset(year: int) -> Mapping[str, _Series]:
    raw = resources.files("shared.data").joinpath(data_file(year)).read_bytes()
    rows: dict[str, list[tuple[str, float]]] = {}
    with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8") as text:
        for row in csv.DictReader(text):
            rows.setdefault(row["zone"], []).append(
                (row["datetime_utc"], float(row["lca_g_per_kwh"]))
            )
    series: dict[str, _Series] = {}
    for zone, items in rows.items():
        items.sort()
        first = _parse(items[0][0])
        last = _parse(items[-1][0])
        if (last - first) // _HOUR + 1 != len(items):
            raise ValueError(f"{data_file(year)}: {zone} is not a gapless hourly series")
        series[zone] = _Series(first, tuple(value for _, value in items))
    return MappingProxyType(series)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def dataset_zone(zone: str, year: int = 2024) -> str | None:
    """The ``year`` dataset's key for catalog zone ``zone``, None when it has no such series."""
    key = ZONE_DATA_ALIASES.get(zone, zone)
    return key if key in _dataset(year) else None


@dataclass(frozen=True, slots=True)
class Traces:
    """Actual hourly intensity (gCO2eq/kWh) per catalog zone from ``start`` for ``hours`` hours."""

    start: datetime
    hours: int
    values: Mapping[str, tuple[float, ...]]
    sources: Mapping[str, str]
    """Zone → ``electricitymaps-2024`` (measured) or ``mock-model``."""

    def at(self, zone: str, hour: int) -> float:
        return self.values[zone][hour]

    def mean(self, zone: str, first: int, end: int) -> float:
        """Mean over hours ``first`` … ``end - 1``."""
        if end <= first:
            raise ValueError(f"empty interval {first}..{end}")
        window = self.values[zone][first:end]
        if len(window) != end - first:
            raise ValueError(f"{zone}: hours {first}..{end} exceed the trace ({self.hours} hours)")
        return sum(window) / len(window)

    def time(self, hour: int) -> datetime:
        return self.start + hour * _HOUR


def measured(zone: str, start: datetime, hours: int) -> tuple[float, ...]:
    """The dataset's ``hours`` values for ``zone`` from ``start`` (an exact UTC hour), from the
    data of the year ``start`` falls in."""
    key = dataset_zone(zone, start.year)
    if key is None:
        raise KeyError(f"no {start.year} hourly data for zone {zone}")
    series = _dataset(start.year)[key]
    offset = (start - series.first) // _HOUR
    if start != series.first + offset * _HOUR:
        raise ValueError(f"{start.isoformat()} is not a whole hour")
    if offset < 0 or offset + hours > len(series.values):
        raise ValueError(f"{zone}: {hours} hours from {start.isoformat()} exceed the dataset")
    return series.values[offset : offset + hours]


async def modelled(
    info: RegionInfo, start: datetime, hours: int, *, seed: int
) -> tuple[float, ...]:
    """The mock provider's "current" value at each of ``hours`` hours from ``start``."""
    moment = [start]
    provider = MockProvider(clock=lambda: moment[0], seed=seed)
    values = []
    for hour in range(hours):
        moment[0] = start + hour * _HOUR
        values.append((await provider.current(info)).g_per_kwh)
    return tuple(values)


async def build_traces(
    regions: Iterable[RegionInfo], start: datetime, hours: int, *, seed: int = 0
) -> Traces:
    """One series per distinct zone of ``regions``: measured when the dataset of ``start``'s year
    has it (source ``electricitymaps-<year>``), else mock."""
    values: dict[str, tuple[float, ...]] = {}
    sources: dict[str, str] = {}
    for info in regions:
        zone = info.zone
        if zone is None:
            raise ValueError(f"{info.key} has no grid zone; it cannot be replayed")
        if zone in values:
            continue
        if dataset_zone(zone, start.year) is not None:
            values[zone] = measured(zone, start, hours)
            sources[zone] = f"electricitymaps-{start.year}"
        else:
            values[zone] = await modelled(info, start, hours, seed=seed)
            sources[zone] = MODELLED
    return Traces(start, hours, MappingProxyType(values), MappingProxyType(sources))


def forecast_values(traces: Traces, zone: str, hour: int, count: int, *, seed: int) -> list[float]:
    """What a forecast issued at ``hour`` says for hours ``hour + 1`` … ``hour + count``."""
    rng = random.Random(f"{seed}|forecast|{zone}|{hour}")
    walk = 0.0
    values = []
    for lead in range(1, count + 1):
        walk += rng.gauss(0.0, 1.0)
        error_sd = FORECAST_ERROR_PER_SQRT_HOUR * math.sqrt(lead)
        log_error = FORECAST_ERROR_PER_SQRT_HOUR * walk - error_sd**2 / 2
        values.append(traces.at(zone, hour + lead) * math.exp(log_error))
    return values


def snapshot_at(
    traces: Traces,
    regions: Sequence[RegionInfo],
    hour: int,
    *,
    forecast_hours: int = 48,
    seed: int = 0,
) -> CarbonSnapshot:
    """What a refresher would hold at ``hour``: the actual value now, a forecast when asked.

    ``forecast_hours=0`` gives current values only (a ranking without foresight).
    """
    now = traces.time(hour)
    provenance = Provenance(provider="replay", fetched_at=now)
    forecasts: dict[str, Forecast | None] = {}
    carbon: dict[str, RegionCarbon] = {}
    for info in regions:
        zone = info.zone
        assert zone is not None  # build_traces refuses zoneless regions
        if zone not in forecasts:
            forecasts[zone] = (
                Forecast(
                    zone=zone,
                    generated_at=now,
                    points=tuple(
                        ForecastPoint(starts_at=now + lead * _HOUR, g_per_kwh=value)
                        for lead, value in enumerate(
                            forecast_values(traces, zone, hour, forecast_hours, seed=seed), start=1
                        )
                    ),
                    provenance=provenance,
                )
                if forecast_hours > 0
                else None
            )
        current = Intensity(
            zone=zone, g_per_kwh=traces.at(zone, hour), observed_at=now, provenance=provenance
        )
        carbon[info.region] = RegionCarbon(info=info, current=current, forecast=forecasts[zone])
    return CarbonSnapshot(taken_at=now, regions=MappingProxyType(carbon))
