"""Typical daily and seasonal shapes of grid carbon intensity, per grid zone.

The mock provider draws its numbers from these shapes. Sixteen zones have measured profiles,
summarised from Electricity Maps 2024 hourly data (electricitymaps.com, Open Database License
ODbL 1.0) into ``shared/data/grid-profiles-2024.json`` by ``tools/derive_profiles.py``. Every
other zone borrows the shape of a grid with a similar generation mix, or a synthetic one; those
choices are assumptions and are listed in ``BORROWED_SHAPES``:

* wind + solar grids of Europe (IE, NL, BE, DK, ...) look like DE-LU: solar dip, evening peak;
* coal/gas baseload grids (MISO, the Carolinas, Southeast, Taiwan) look like PJM: nearly flat;
* gas grids with a little rooftop solar (Gulf states, Hong Kong, Indonesia) look like Singapore;
* hydro or nuclear grids (Bonneville, Québec, the Nordics, France, Switzerland, New Zealand) get
  the synthetic ``hydro`` shape: flat within ±5 %, slightly higher in the evening;
* anything else gets the synthetic ``generic`` shape: a mild midday dip and evening peak (about
  ±10 %), no seasonality.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from shared.core.errors import CarbonError

PROFILES_FILE = "grid-profiles-2024.json"
"""Package data file (under ``shared/data``) holding the measured profiles."""

DATASET_ALIASES: dict[str, str] = {"DE": "DE-LU", "LU": "DE-LU"}
"""API zone keys whose grid the hourly dataset publishes under another key."""

BORROWED_SHAPES: dict[str, str] = {
    # Wind + solar, moderate daily swing.
    **dict.fromkeys(("IE", "NL", "BE", "DK", "AT", "ES", "PT", "IT", "GR"), "DE-LU"),
    # Fossil baseload: nearly flat with a slight evening maximum.
    **dict.fromkeys(("US-MIDW", "US-CAR", "US-SE", "US-CENT", "US-NW-PACE", "TW"), "US-MIDA-PJM"),
    "US-MIDA": "US-MIDA-PJM",
    # Gas with a little solar: flat with a shallow midday dip.
    **dict.fromkeys(("AE", "BH", "SA", "QA", "OM", "KW", "IL", "HK", "ID", "MY"), "SG"),
    # Hydro or nuclear dominated.
    **dict.fromkeys(
        ("US-NW", "CA-QC", "CA-BC", "CA-MB", "NO", "SE", "FI", "IS", "CH", "FR", "NZ"), "hydro"
    ),
    # Same grid family as a measured zone.
    "US-CAL": "US-CAL-CISO",
    "US-NW-NEVP": "US-CAL-CISO",
    "US-SW": "US-CAL-CISO",
    "US-NY": "US-NY-NYIS",
    "US-NE": "US-NY-NYIS",
    "US-TEX": "US-TEX-ERCO",
    "GB": "GB",
    "AU": "AU-NSW",
    "JP": "JP-TK",
    "IN": "IN-WE",
    "BR": "BR-SP",
    "CL": "CL-SIC",
}
"""Zone key or zone-key prefix (the parts before a ``-``) → profile used for zones without data.

The longest matching key wins: ``US-NW-NEVP`` is Californian while the rest of ``US-NW`` is hydro.
"""

DEFAULT_SHAPE = "generic"


@dataclass(frozen=True, slots=True)
class Variability:
    """How far a zone strays from its typical shape (log-scale, as in the derived data)."""

    day_sd: float
    """Standard deviation of the day's level relative to its month."""
    day_rho: float
    """Correlation of one day's level with the next (weather lasts a few days)."""
    hour_sd: float
    """Standard deviation of the hourly residual around the day's shape."""
    hour_rho: float
    """Correlation of one hour's residual with the next."""


@dataclass(frozen=True, slots=True)
class GridProfile:
    """The typical year of one grid: seasonal level and daily shape in local standard time."""

    name: str
    measured: bool
    """True for shapes summarised from hourly data, False for the synthetic ones."""
    utc_offset_hours: float
    """Offset of the data's local time; meaningful only for measured profiles."""
    annual_mean_g: float | None
    """Mean lifecycle intensity over the data's year; None for synthetic shapes."""
    monthly_level: tuple[float, ...]
    """12 values: month mean / annual mean."""
    hourly_multipliers: tuple[tuple[float, ...], ...]
    """12 * 24: value at a local hour / that month's mean."""
    renewable_pct: tuple[tuple[float, ...], ...] | None
    """12 * 24 mean renewable share, percent; None for synthetic shapes."""
    variability: Variability

    def shape_at(self, local: datetime) -> tuple[float, float | None]:
        """Expected value / annual mean, and the renewable share, at a local (naive) time.

        Months are blended linearly between their midpoints so nothing jumps at a month boundary.
        """
        days_in_month = _days_in_month(local.year, local.month)
        position = local.month - 1.5 + (local.day - 1 + local.hour / 24) / days_in_month
        below = math.floor(position)
        weight = position - below
        first, second = below % 12, (below + 1) % 12
        hour = local.hour

        def blend(values: tuple[tuple[float, ...], ...]) -> float:
            return (1 - weight) * values[first][hour] + weight * values[second][hour]

        level = (1 - weight) * self.monthly_level[first] + weight * self.monthly_level[second]
        renewable = None if self.renewable_pct is None else blend(self.renewable_pct)
        return level * blend(self.hourly_multipliers), renewable


@dataclass(frozen=True, slots=True)
class ZoneShape:
    """The profile a zone is modelled with, and whether it is that zone's own measured data."""

    profile: GridProfile
    own_data: bool


def shape_for_zone(zone: str) -> ZoneShape:
    """The zone's own measured profile, else a borrowed or synthetic one (never fails)."""
    measured = measured_profiles()
    dataset_key = DATASET_ALIASES.get(zone, zone)
    if dataset_key in measured:
        return ZoneShape(measured[dataset_key], own_data=True)
    parts = zone.split("-")
    for end in range(len(parts), 0, -1):
        borrowed = BORROWED_SHAPES.get("-".join(parts[:end]))
        if borrowed is not None:
            return ZoneShape(_profile_named(borrowed), own_data=False)
    return ZoneShape(_profile_named(DEFAULT_SHAPE), own_data=False)


def _profile_named(name: str) -> GridProfile:
    return measured_profiles().get(name) or SYNTHETIC_PROFILES[name]


@cache
def measured_profiles() -> Mapping[str, GridProfile]:
    """The measured profiles, read from package data on first use."""
    source = resources.files("shared") / "data" / PROFILES_FILE
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        return {zone: _parse_profile(zone, raw) for zone, raw in document["zones"].items()}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise CarbonError(f"grid profile data {PROFILES_FILE} is unreadable: {e}") from e


def _parse_profile(zone: str, raw: dict[str, Any]) -> GridProfile:
    multipliers = _grid(raw["hourly_multipliers"])
    renewable = _grid(raw["renewable_pct"])
    monthly = tuple(float(v) for v in raw["monthly_level"])
    if len(monthly) != 12 or min(monthly) <= 0 or min(min(m) for m in multipliers) <= 0:
        raise ValueError(f"{zone}: levels must be 12 positive values")
    daily, hourly = raw["daily"], raw["hourly_residual"]
    return GridProfile(
        name=zone,
        measured=True,
        utc_offset_hours=float(raw["utc_offset_hours"]),
        annual_mean_g=float(raw["annual_mean_g"]),
        monthly_level=monthly,
        hourly_multipliers=multipliers,
        renewable_pct=renewable,
        variability=Variability(
            day_sd=float(daily["level_sd"]),
            day_rho=float(daily["level_rho"]),
            hour_sd=float(hourly["marginal_sd"]),
            hour_rho=float(hourly["rho"]),
        ),
    )


def _grid(raw: list[list[float]]) -> tuple[tuple[float, ...], ...]:
    grid = tuple(tuple(float(v) for v in month) for month in raw)
    if len(grid) != 12 or any(len(month) != 24 for month in grid):
        raise ValueError("expected 12 months * 24 hours")
    return grid


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (datetime(year, month + 1, 1) - datetime(year, month, 1)).days


def _daily_wave(evening: float, midday_dip: float) -> tuple[tuple[float, ...], ...]:
    """A daily shape averaging exactly 1: a peak around 19:00 and a dip around 12:30."""
    day = tuple(
        1
        + evening * math.cos(2 * math.pi * (hour - 19) / 24)
        - midday_dip * max(0.0, math.cos(2 * math.pi * (hour - 12.5) / 14))
        + midday_dip * _MIDDAY_MEAN
        for hour in range(24)
    )
    return (day,) * 12


_MIDDAY_MEAN = sum(max(0.0, math.cos(2 * math.pi * (hour - 12.5) / 14)) for hour in range(24)) / 24

SYNTHETIC_PROFILES: dict[str, GridProfile] = {
    "hydro": GridProfile(
        name="hydro",
        measured=False,
        utc_offset_hours=0.0,
        annual_mean_g=None,
        monthly_level=(1.0,) * 12,
        hourly_multipliers=_daily_wave(evening=0.05, midday_dip=0.0),
        renewable_pct=None,
        variability=Variability(day_sd=0.06, day_rho=0.6, hour_sd=0.02, hour_rho=0.85),
    ),
    "generic": GridProfile(
        name="generic",
        measured=False,
        utc_offset_hours=0.0,
        annual_mean_g=None,
        monthly_level=(1.0,) * 12,
        hourly_multipliers=_daily_wave(evening=0.06, midday_dip=0.06),
        renewable_pct=None,
        variability=Variability(day_sd=0.08, day_rho=0.6, hour_sd=0.04, hour_rho=0.87),
    ),
}
"""Shapes for zones without measured data (assumptions, see the module docstring)."""
