"""User-defined regions: the override file that adds on-prem or custom regions to the catalog, or
replaces a cloud region's mapping.

The file is YAML or JSON: a list of entries (or a mapping whose ``regions`` key holds that list)::

    - region: dc-paris-1          # the value nodes carry in their region label
      zone: FR                    # grid zone (Electricity Maps zone key)
      location: Paris, France
      pue: 1.4
      annualGramsPerKwh: 52.9
      aliases: [paris]
    - region: us-west-2
      cloud: aws
      zone: US-NW-PACW

Fields: ``region`` and ``zone`` are required; ``cloud`` (aws, gcp, azure, onprem), ``location``,
``latitude``/``longitude``, ``pue`` (>= 1), ``annualGramsPerKwh`` (gCO2eq/kWh), ``annualYear``,
``watttimeRegion`` and ``aliases`` are optional. Anything invalid raises ``CatalogError`` naming the
file, the entry and the field.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

import yaml

from shared.core.errors import CatalogError, truncate
from shared.core.models import Cloud, RegionInfo

_CLOUD_NAMES: Final[Mapping[str, Cloud]] = {
    "amazon web services": Cloud.AWS,
    "aws": Cloud.AWS,
    "google cloud": Cloud.GCP,
    "google cloud platform": Cloud.GCP,
    "gcp": Cloud.GCP,
    "microsoft azure": Cloud.AZURE,
    "azure": Cloud.AZURE,
    "onprem": Cloud.ONPREM,
    "on-prem": Cloud.ONPREM,
    "on-premises": Cloud.ONPREM,
}

_FIELDS: Final = (
    "region",
    "cloud",
    "zone",
    "location",
    "latitude",
    "longitude",
    "pue",
    "annualGramsPerKwh",
    "annualYear",
    "watttimeRegion",
    "aliases",
)


def parse_cloud(name: str) -> Cloud | None:
    """``aws``/``Amazon Web Services``, ``gcp``/``Google Cloud``, ``azure``/``Microsoft Azure``,
    ``onprem``; None for anything else."""
    return _CLOUD_NAMES.get(" ".join(name.split()).casefold())


@dataclass(frozen=True, slots=True)
class RegionOverride:
    """One validated entry of an override file. None means "not given"."""

    origin: str
    """``<file>: entry <n>``, for messages."""
    index: int
    """1-based position in the file."""
    region: str
    zone: str
    cloud: Cloud | None = None
    location: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    pue: float | None = None
    annual_g_per_kwh: float | None = None
    annual_year: int | None = None
    watttime_region: str | None = None
    aliases: tuple[str, ...] | None = None

    def apply_to(self, base: RegionInfo | None) -> RegionInfo:
        """The region this entry defines, on top of the catalog region it replaces (if any).

        Site facts left out are kept from ``base``; grid facts (annual intensity and its year,
        WattTime region) only while the zone is unchanged, because they describe the old grid.
        """
        # An unmapped region's annual value already describes its grid; the override only names it.
        same_grid = base is not None and (base.zone is None or _same(base.zone, self.zone))
        annual, year = self.annual_g_per_kwh, self.annual_year
        if annual is None and same_grid and base is not None:
            annual, year = base.annual_g_per_kwh, base.annual_year
        watttime = self.watttime_region
        if watttime is None and same_grid and base is not None:
            watttime = base.watttime_region
        has_coordinates = self.latitude is not None
        return RegionInfo(
            cloud=self.cloud or (base.cloud if base else Cloud.ONPREM),
            region=base.region if base else self.region,
            zone=self.zone,
            watttime_region=watttime,
            location=self.location
            if self.location is not None
            else (base.location if base else ""),
            latitude=self.latitude if has_coordinates or base is None else base.latitude,
            longitude=self.longitude if has_coordinates or base is None else base.longitude,
            pue=self.pue if self.pue is not None or base is None else base.pue,
            annual_g_per_kwh=annual,
            annual_year=year if annual is not None else None,
            aliases=_pick(self.aliases, base.aliases if base else ()),
        )


def _pick(given: tuple[str, ...] | None, kept: tuple[str, ...]) -> tuple[str, ...]:
    return kept if given is None else given


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def read_overrides(path: str | os.PathLike[str]) -> tuple[RegionOverride, ...]:
    """Read and validate an override file (``.json`` as JSON, anything else as YAML)."""
    file = Path(path)
    name = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"{name}: cannot read region overrides: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise CatalogError(f"{name}: region overrides are not UTF-8 text") from e
    parse = json.loads if _format(file) == "JSON" else yaml.safe_load
    try:
        document: object = parse(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise CatalogError(f"{name}: not valid {_format(file)}: {truncate(str(e))}") from e
    return parse_overrides(document, name)


def _format(file: Path) -> str:
    return "JSON" if file.suffix.casefold() == ".json" else "YAML"


def parse_overrides(document: object, source: str) -> tuple[RegionOverride, ...]:
    """Validate an already parsed override document; ``source`` names it in messages."""
    if document is None:
        return ()
    entries = document
    if isinstance(document, Mapping):
        if set(document) != {"regions"}:
            raise CatalogError(
                f"{source}: expected a list of regions or a mapping with only a 'regions' list"
            )
        entries = document["regions"]
        if entries is None:
            return ()
    if not isinstance(entries, list):
        raise CatalogError(f"{source}: expected a list of regions, got {_kind(entries)}")
    return tuple(_entry(raw, index, source) for index, raw in enumerate(entries, start=1))


def _entry(raw: object, index: int, source: str) -> RegionOverride:
    origin = f"{source}: entry {index}"
    if not isinstance(raw, Mapping):
        raise CatalogError(
            f"{origin}: must be a mapping with 'region' and 'zone', got {_kind(raw)}"
        )
    fields = _Fields(raw, origin)
    region = fields.required_text("region")
    fields.origin = f"{origin} (region {region!r})"
    fields.reject_unknown()
    zone = fields.required_text("zone")
    cloud_name = fields.text("cloud")
    cloud = None
    if cloud_name is not None:
        cloud = parse_cloud(cloud_name)
        if cloud is None:
            fields.fail("cloud", f"unknown cloud {cloud_name!r}; use aws, gcp, azure or onprem")
    latitude = fields.number("latitude", minimum=-90.0, maximum=90.0)
    longitude = fields.number("longitude", minimum=-180.0, maximum=180.0)
    if (latitude is None) != (longitude is None):
        fields.fail(
            "latitude" if latitude is None else "longitude", "give latitude and longitude together"
        )
    year = fields.number("annualYear", minimum=1900.0, maximum=9999.0, integer=True)
    return RegionOverride(
        origin=fields.origin,
        index=index,
        region=region,
        zone=zone,
        cloud=cloud,
        location=fields.text("location", allow_empty=True),
        latitude=latitude,
        longitude=longitude,
        pue=fields.number("pue", minimum=1.0),
        annual_g_per_kwh=fields.number("annualGramsPerKwh", minimum=0.0),
        annual_year=int(year) if year is not None else None,
        watttime_region=fields.text("watttimeRegion"),
        aliases=fields.aliases(),
    )


class _Fields:
    """Typed access to one raw entry; every failure names the entry and the field."""

    def __init__(self, raw: Mapping[object, object], origin: str) -> None:
        self._raw = raw
        self.origin = origin

    def fail(self, field: str, problem: str) -> NoReturn:
        raise CatalogError(f"{self.origin}: field {field!r}: {problem}")

    def reject_unknown(self) -> None:
        for key in self._raw:
            if key not in _FIELDS:
                hint = difflib.get_close_matches(str(key), _FIELDS, n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                self.fail(str(key), f"unknown field{suggestion}")

    def required_text(self, field: str) -> str:
        value = self.text(field)
        if value is None:
            self.fail(field, "is required")
        return value

    def text(self, field: str, *, allow_empty: bool = False) -> str | None:
        value = self._raw.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(field, f"must be a string, got {_kind(value)}")
        value = value.strip()
        if not value and not allow_empty:
            self.fail(field, "must not be empty")
        return value

    def number(
        self, field: str, *, minimum: float, maximum: float = math.inf, integer: bool = False
    ) -> float | None:
        value = self._raw.get(field)
        if value is None:
            return None
        # bool is an int to Python, but "pue: true" is a mistake, not 1.0.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, f"must be a number, got {_kind(value)}")
        number = float(value)
        if not math.isfinite(number):
            self.fail(field, "must be a finite number")
        if integer and not number.is_integer():
            self.fail(field, f"must be a whole number, got {value}")
        if not minimum <= number <= maximum:
            bounds = (
                f">= {minimum:g}" if maximum == math.inf else f"between {minimum:g} and {maximum:g}"
            )
            self.fail(field, f"must be {bounds}, got {value}")
        return number

    def aliases(self) -> tuple[str, ...] | None:
        value = self._raw.get("aliases")
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(a, str) and a.strip() for a in value):
            self.fail("aliases", "must be a list of non-empty strings")
        return tuple(str(a).strip() for a in value)


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
