"""Reading the Green Software Foundation's "Cloud Region Metadata" dataset into catalog regions.

The dataset (real-time-cloud project, one row per cloud region and year) gives each region's grid
zone, WattTime region, location, PUE and annual grid intensities. This module picks, per region, the
newest year that has each value, keeps grid numbers consistent with the chosen zone and basis, and
applies the few corrections documented below. ``shared.regions.catalog`` turns the result into
lookups.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, TypeVar

from shared.core.errors import CatalogError
from shared.core.models import Cloud, RegionInfo
from shared.regions.overrides import parse_cloud

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Column names, per the dataset's specification (Cloud_Region_Metadata_specification.md).
_YEAR = "year"
_PROVIDER = "cloud-provider"
_REGION = "cloud-region"
_ZONE = "em-zone-id"
_WATTTIME = "wt-region-id"
_LOCATION = "location"
_GEOLOCATION = "geolocation"
_PUE = "power-usage-effectiveness"
_CONSUMPTION = "grid-carbon-intensity-average-consumption-annual"
_PRODUCTION = "grid-carbon-intensity-average-production-annual"
_REQUIRED_COLUMNS: Final = (_YEAR, _PROVIDER, _REGION, _ZONE, _WATTTIME, _LOCATION, _GEOLOCATION)
# The marginal columns (grid-carbon-intensity-marginal-consumption-annual and grid-carbon-intensity,
# WattTime annual marginal rates) are deliberately never used: a marginal rate describes the next
# kWh, not the mix, and is not comparable with the average intensities the providers report
# (us-west-2: 476.66 marginal, 119.76 average).

_DIRECT_BASIS_YEARS: Final = frozenset({(Cloud.GCP, 2024)})
# Google Cloud's 2024 rows carry Google's own published "grid carbon intensity", which is
# Electricity Maps' direct (operational) annual mean: us-west2 169.28 vs US-CAL-CISO direct 168.5,
# asia-northeast1 452.85 vs JP-TK 453.5, asia-southeast1 366.85 vs SG 366.9 (Electricity Maps 2024
# hourly data). Every other row is the lifecycle mean that the Electricity Maps API returns by
# default (CISO 2023: 261.28 vs 260.7). Mixing the bases would make one grid look 15-35 % cleaner
# behind a GCP label, so those values are used only for regions that have nothing else.

_PREFERRED_ZONE: Final[Mapping[tuple[Cloud, str], str]] = {
    # The dataset lists Azure North Europe twice per year, as Finland (FI) and as Ireland (IE).
    # North Europe is the Dublin region (Azure CLI location metadata: physicalLocation "Ireland"),
    # and only the Ireland row carries Microsoft's PUE for it.
    (Cloud.AZURE, "northeurope"): "IE",
}

_AZURE_DISPLAY_NAMES: Final[Mapping[str, str]] = {
    # Azure CLI / portal display names, so a label or setting written either way resolves.
    "australiaeast": "Australia East",
    "australiasoutheast": "Australia Southeast",
    "austriaeast": "Austria East",
    "brazilsouth": "Brazil South",
    "centralus": "Central US",
    "denmarkeast": "Denmark East",
    "eastus": "East US",
    "eastus2": "East US 2",
    "eastus3": "East US 3",
    "greececentral": "Greece Central",
    "indiasouthcentral": "India South Central",
    "italynorth": "Italy North",
    "mexicocentral": "Mexico Central",
    "newzealandnorth": "New Zealand North",
    "northcentralus": "North Central US",
    "northeurope": "North Europe",
    "polandcentral": "Poland Central",
    "southcentralus": "South Central US",
    "southeastasia": "Southeast Asia",
    "spaincentral": "Spain Central",
    "swedencentral": "Sweden Central",
    "taiwannorth": "Taiwan North",
    "westcentralus": "West Central US",
    "westeurope": "West Europe",
    "westus": "West US",
    "westus2": "West US 2",
    "westus3": "West US 3",
}


@dataclass(frozen=True, slots=True)
class _Row:
    """One dataset row, typed; empty cells are None."""

    line: int
    year: int
    cloud: Cloud
    region: str
    zone: str | None
    watttime: str | None
    location: str | None
    latitude: float | None
    longitude: float | None
    pue: float | None
    consumption: float | None
    production: float | None

    @property
    def direct_basis(self) -> bool:
        return (self.cloud, self.year) in _DIRECT_BASIS_YEARS


@dataclass(frozen=True, slots=True)
class _Annual:
    g_per_kwh: float
    year: int
    source: str


def read_gsf_regions(text: str, source: str) -> tuple[list[RegionInfo], dict[str, str]]:
    """Regions from the text of the dataset's CSV, and where each annual intensity came from
    (keyed by ``RegionInfo.key``). Raises ``CatalogError`` naming the line of a malformed cell."""
    rows = _parse_rows(text, source)
    groups: dict[tuple[Cloud, str], list[_Row]] = defaultdict(list)
    for row in rows:
        groups[(row.cloud, row.region)].append(row)
    _correct_azure_west_us(groups)

    entries: list[RegionInfo] = []
    sources: dict[str, str] = {}
    for (cloud, region), group in groups.items():
        preferred = _PREFERRED_ZONE.get((cloud, region))
        if preferred is not None:
            group = [row for row in group if row.zone == preferred] or group
        group.sort(key=lambda row: (-row.year, row.line))
        info, annual = _entry(cloud, region, group, source)
        entries.append(info)
        if annual is not None:
            sources[info.key] = annual.source
    entries.append(_azure_west_us(rows, source, sources))
    return entries, sources


def _parse_rows(text: str, source: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise CatalogError(f"{source}: missing columns {', '.join(missing)}")
    rows: list[_Row] = []
    for line, raw in enumerate(reader, start=2):
        cloud = parse_cloud(raw[_PROVIDER] or "")
        region = (raw[_REGION] or "").strip()
        if cloud is None or not region:
            # Providers this product has no node integration for (the dataset grows) are skipped.
            logger.debug("%s line %d: skipped provider %r", source, line, raw[_PROVIDER])
            continue
        where = f"{source} line {line}"
        latitude, longitude = _geolocation(raw[_GEOLOCATION], where)
        rows.append(
            _Row(
                line=line,
                year=_year(raw[_YEAR], where),
                cloud=cloud,
                region=region,
                zone=_text(raw[_ZONE]),
                watttime=_text(raw[_WATTTIME]),
                location=_text(raw[_LOCATION]),
                latitude=latitude,
                longitude=longitude,
                pue=_number(raw.get(_PUE), where, _PUE, minimum=1.0),
                consumption=_number(raw.get(_CONSUMPTION), where, _CONSUMPTION, minimum=0.0),
                production=_number(raw.get(_PRODUCTION), where, _PRODUCTION, minimum=0.0),
            )
        )
    return rows


def _text(cell: str | None) -> str | None:
    value = (cell or "").strip()
    return value or None


def _year(cell: str | None, where: str) -> int:
    try:
        return int((cell or "").strip())
    except ValueError as e:
        raise CatalogError(f"{where}: column {_YEAR!r}: not a year: {cell!r}") from e


def _number(cell: str | None, where: str, column: str, *, minimum: float) -> float | None:
    text = (cell or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as e:
        raise CatalogError(f"{where}: column {column!r}: not a number: {text!r}") from e
    if not math.isfinite(value) or value < minimum:
        raise CatalogError(f"{where}: column {column!r}: {text} is below {minimum} or not finite")
    return value


def _geolocation(cell: str | None, where: str) -> tuple[float | None, float | None]:
    text = (cell or "").strip()
    if not text:
        return None, None
    parts = text.split(",")
    try:
        latitude, longitude = (float(p) for p in parts)
    except ValueError as e:
        raise CatalogError(f"{where}: column {_GEOLOCATION!r}: not 'lat,lon': {text!r}") from e
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise CatalogError(f"{where}: column {_GEOLOCATION!r}: out of range: {text!r}")
    return latitude, longitude


def _first(values: Iterable[_T | None]) -> _T | None:
    return next((v for v in values if v is not None), None)


def _entry(
    cloud: Cloud, region: str, group: Sequence[_Row], source: str
) -> tuple[RegionInfo, _Annual | None]:
    """One region from its rows, newest year first; gaps are filled from older years.

    Grid facts (WattTime region, annual intensity) are only taken from rows with the chosen zone:
    some early rows name a different zone (europe-west1 2020 says GB) and their numbers describe
    that other grid. Site facts (location, coordinates, PUE) come from any year.
    """
    zone = _first(row.zone for row in group)
    grid_rows = [row for row in group if row.zone == zone]
    coordinates = _first(
        (row.latitude, row.longitude) if row.latitude is not None else None for row in group
    )
    annual = _annual(grid_rows, source)
    info = RegionInfo(
        cloud=cloud,
        region=region,
        zone=zone,
        watttime_region=_first(row.watttime for row in grid_rows),
        location=_first(row.location for row in group) or "",
        latitude=coordinates[0] if coordinates else None,
        longitude=coordinates[1] if coordinates else None,
        pue=_first(row.pue for row in group),
        annual_g_per_kwh=annual.g_per_kwh if annual else None,
        annual_year=annual.year if annual else None,
        aliases=_aliases(cloud, region),
    )
    return info, annual


def _annual(grid_rows: Sequence[_Row], source: str) -> _Annual | None:
    """The annual intensity: consumption-based lifecycle mean from the newest year that has one,
    else the production-based mean, else (regions with nothing else) a direct-basis value.

    A value repeated unchanged from the year before was carried over by the dataset rather than
    re-measured (the 2024 AWS rows repeat 2023), so the year reported is the one it first appeared.
    """
    passes = (
        (_CONSUMPTION, False, "lifecycle basis"),
        (_PRODUCTION, False, "production-based"),
        (_CONSUMPTION, True, "direct basis, as published by the provider"),
    )
    for column, direct, basis in passes:
        usable = [row for row in grid_rows if row.direct_basis is direct]
        for index, row in enumerate(usable):
            value = _column(row, column)
            if value is None:
                continue
            year = row.year
            for older in usable[index + 1 :]:
                if older.year != year - 1 or _column(older, column) != value:
                    break
                year = older.year
            return _Annual(value, year, f"{source}, {year}, {column} ({basis})")
    return None


def _column(row: _Row, column: str) -> float | None:
    return row.consumption if column == _CONSUMPTION else row.production


def _aliases(cloud: Cloud, region: str) -> tuple[str, ...]:
    if cloud is Cloud.AZURE and region in _AZURE_DISPLAY_NAMES:
        return (_AZURE_DISPLAY_NAMES[region],)
    return ()


# Azure "westus" is in California: the Azure CLI location metadata gives physicalLocation
# "California" at 37.783,-122.417, and Cloud Carbon Footprint's AzureRegions.ts maps WestUS to
# US-CAL-CISO. The dataset's row named westus instead describes "Washington: West US" at Quincy, WA
# (47.247,-119.82) on the BPA grid, which is where West US 2 runs: the Microsoft fact sheet the
# dataset cites for it is "Washington (West US 2)". So that row's data is catalogued as westus2, and
# westus is rebuilt on the California grid (CAISO North) with no PUE of its own (Microsoft publishes
# none for it; footprints fall back to the Azure default).
_AZURE_WEST_US_ZONE: Final = "US-CAL-CISO"
_AZURE_WEST_US_WATTTIME: Final = "CAISO_NORTH"
_AZURE_WEST_US_COORDINATES: Final = (37.783, -122.417)


def _correct_azure_west_us(groups: dict[tuple[Cloud, str], list[_Row]]) -> None:
    washington = groups.pop((Cloud.AZURE, "westus"), [])
    if washington and (Cloud.AZURE, "westus2") not in groups:
        groups[(Cloud.AZURE, "westus2")] = [
            replace(row, region="westus2", location="Washington: West US 2") for row in washington
        ]


def _azure_west_us(rows: Sequence[_Row], source: str, sources: dict[str, str]) -> RegionInfo:
    azure_years = [row.year for row in rows if row.cloud is Cloud.AZURE]
    newest = max(azure_years, default=None)
    # The annual value is the zone's own, from any cloud's row for the California grid, in the
    # newest year the Azure rows cover, so it stays comparable with the other Azure regions.
    grid_rows = sorted(
        (
            row
            for row in rows
            if row.zone == _AZURE_WEST_US_ZONE and (newest is None or row.year <= newest)
        ),
        key=lambda row: (-row.year, row.line),
    )
    annual = _annual(grid_rows, source)
    info = RegionInfo(
        cloud=Cloud.AZURE,
        region="westus",
        zone=_AZURE_WEST_US_ZONE,
        watttime_region=_AZURE_WEST_US_WATTTIME,
        location="California: West US",
        latitude=_AZURE_WEST_US_COORDINATES[0],
        longitude=_AZURE_WEST_US_COORDINATES[1],
        pue=None,
        annual_g_per_kwh=annual.g_per_kwh if annual else None,
        annual_year=annual.year if annual else None,
        aliases=_aliases(Cloud.AZURE, "westus"),
    )
    if annual is not None:
        sources[info.key] = f"{annual.source}, zone {_AZURE_WEST_US_ZONE}"
    return info
