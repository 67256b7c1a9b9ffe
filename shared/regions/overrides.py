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
``watttimeRegion`` and ``aliases`` are optional; ``null`` is the same as leaving a field out, and
unknown fields are refused. Each entry is read by a pydantic model (``_Entry``); anything invalid
raises ``CatalogError`` naming the file, the entry and the field.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

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
    try:
        entry = _Entry.model_validate(raw)
    except ValidationError as e:
        errors = e.errors(include_url=False)
    else:
        origin = f"{origin} (region {entry.region!r})"
        return RegionOverride(
            origin=origin,
            index=index,
            region=entry.region,
            zone=entry.zone,
            cloud=entry.cloud,
            location=entry.location,
            latitude=entry.latitude,
            longitude=entry.longitude,
            pue=entry.pue,
            annual_g_per_kwh=entry.annual_grams_per_kwh,
            annual_year=None if entry.annual_year is None else int(entry.annual_year),
            watttime_region=entry.watttime_region,
            aliases=None if entry.aliases is None else tuple(entry.aliases),
        )
    # Raised outside the handler, one failure per message: the region's own first, then unknown
    # fields (a misspelt key explains a "required" one), then the fields in the order they are read.
    first = min(errors, key=_rank)
    if first["type"] == "model_type":
        raise CatalogError(
            f"{origin}: must be a mapping with 'region' and 'zone', got {_kind(raw)}"
        )
    if isinstance(raw, Mapping) and not any(error["loc"][:1] == ("region",) for error in errors):
        origin = f"{origin} (region {str(raw['region']).strip()!r})"
    field = str((first.get("ctx") or {}).get("field") or first["loc"][0])
    raise CatalogError(f"{origin}: field {field!r}: {_problem(first)}")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "text_type", "must be a string, got {kind}", {"kind": _kind(value)}
        )
    text = value.strip()
    if not text:
        raise PydanticCustomError("text_empty", "must not be empty")
    return text


def _cloud(value: object) -> Cloud:
    name = _text(value)
    cloud = parse_cloud(name)
    if cloud is None:
        raise PydanticCustomError(
            "cloud", "unknown cloud {name}; use aws, gcp, azure or onprem", {"name": repr(name)}
        )
    return cloud


def _within(low: float, high: float = math.inf) -> AfterValidator:
    bounds = f">= {low:g}" if high == math.inf else f"between {low:g} and {high:g}"

    def check(number: float) -> float:
        if not low <= number <= high:
            raise PydanticCustomError(
                "range", "must be {bounds}, got {value}", _shown(bounds, number)
            )
        return number

    return AfterValidator(check)


def _shown(bounds: str, number: float) -> dict[str, str]:
    # As written in the file: 0.9, 91, not 91.0.
    value = int(number) if number.is_integer() else number
    return {"bounds": bounds, "value": str(value)}


def _non_empty(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("text_empty", "must not be empty")
    return text.strip()


def _whole(number: float) -> float:
    if not number.is_integer():
        raise PydanticCustomError("whole", "must be a whole number, got {value}", {"value": number})
    return number


_Text = Annotated[str, PlainValidator(_text)]

_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Entry(BaseModel):
    """One entry of an override file as written; ``null`` is the same as leaving a field out."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True, frozen=True)

    region: _Text
    zone: _Text
    cloud: Annotated[Cloud, PlainValidator(_cloud)] | None = None
    latitude: Annotated[_Number, _within(-90.0, 90.0)] | None = None
    longitude: Annotated[_Number, _within(-180.0, 180.0)] | None = None
    annual_year: Annotated[_Number, AfterValidator(_whole), _within(1900.0, 9999.0)] | None = None
    location: Annotated[str, Field(strict=True), AfterValidator(str.strip)] | None = None
    pue: Annotated[_Number, _within(1.0)] | None = None
    annual_grams_per_kwh: Annotated[_Number, _within(0.0)] | None = None
    watttime_region: _Text | None = None
    aliases: list[Annotated[str, Field(strict=True), AfterValidator(_non_empty)]] | None = None

    @model_validator(mode="after")
    def _coordinates_together(self) -> _Entry:
        if (self.latitude is None) != (self.longitude is None):
            missing = "latitude" if self.latitude is None else "longitude"
            raise PydanticCustomError(
                "coordinates", "give latitude and longitude together", {"field": missing}
            )
        return self


_FIELDS: Final = tuple(info.alias or name for name, info in _Entry.model_fields.items())


def _rank(error: ErrorDetails) -> tuple[int, int]:
    loc = error["loc"]
    if error["type"] == "model_type":
        return (0, 0)
    if not loc:
        return (4, 0)
    if error["type"] in ("extra_forbidden", "invalid_key"):
        return (2, 0)
    name = str(loc[0])
    return (1, 0) if name == "region" else (3, _FIELDS.index(name) if name in _FIELDS else 0)


def _problem(error: ErrorDetails) -> str:
    if not error["loc"]:
        return error["msg"]
    kind, value, field = error["type"], error["input"], str(error["loc"][0])
    if kind in ("extra_forbidden", "invalid_key"):
        hint = difflib.get_close_matches(field, _FIELDS, n=1)
        return "unknown field" + (f"; did you mean {hint[0]!r}?" if hint else "")
    if field == "aliases":
        return "must be a list of non-empty strings"
    if kind == "missing" or value is None:
        return "is required"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, got {_kind(value)}"
    if kind == "string_type":
        return f"must be a string, got {_kind(value)}"
    if kind == "finite_number":
        return "must be a finite number"
    return error["msg"]


def _kind(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
