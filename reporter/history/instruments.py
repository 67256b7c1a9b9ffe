"""Declared contractual instruments for market-based Scope 2 reporting, read from a YAML file
(the chart's ConfigMap).

The GHG Protocol Scope 2 guidance reports market-based emissions only from what the user
declares: energy attribute certificates (RECs, GOs), power purchase agreements, a supplier's own
emission factor, a residual mix. Each instrument is per region, with its period and its source::

    instruments:
      - region: eu-west-1
        kind: certificate          # certificate (REC, GO), ppa, supplier or residual-mix
        source: "GO registry, batch 2026-IE-0042"
        validFrom: 2026-01-01      # dates, UTC, both days included
        validTo: 2026-12-31
        mwh: 120                   # certificate and ppa only: the volume over the period
        gramsPerKwh: 0             # the instrument's emission factor

Anything invalid raises ``ConfigError`` naming the file, the instrument and the field.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from shared.core.errors import ConfigError, truncate


class InstrumentKind(enum.StrEnum):
    CERTIFICATE = "certificate"
    PPA = "ppa"
    SUPPLIER = "supplier"
    RESIDUAL_MIX = "residual-mix"

    @property
    def has_volume(self) -> bool:
        return self in (InstrumentKind.CERTIFICATE, InstrumentKind.PPA)


@dataclass(frozen=True, slots=True)
class Instrument:
    region: str
    kind: InstrumentKind
    source: str
    starts_at: datetime
    ends_at: datetime
    """Exclusive: midnight UTC after ``validTo``."""
    grams_per_kwh: float
    mwh: float | None = None

    @property
    def hours(self) -> int:
        return int((self.ends_at - self.starts_at) / timedelta(hours=1))

    def covers(self, hour: datetime) -> bool:
        return self.starts_at <= hour < self.ends_at

    def json(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "source": self.source,
            "validFrom": self.starts_at.date().isoformat(),
            "validTo": (self.ends_at - timedelta(days=1)).date().isoformat(),
            "gramsPerKwh": self.grams_per_kwh,
            "mwh": self.mwh,
        }


class _Entry(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)

    region: Annotated[str, Field(min_length=1, max_length=253)]
    kind: InstrumentKind
    source: Annotated[str, Field(min_length=1, max_length=500)]
    valid_from: date
    valid_to: date
    grams_per_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    mwh: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.valid_to < self.valid_from:
            raise ValueError("validTo is before validFrom")
        if self.kind.has_volume and self.mwh is None:
            raise ValueError(f"a {self.kind} needs mwh, its volume over the period")
        if not self.kind.has_volume and self.mwh is not None:
            raise ValueError(f"a {self.kind} applies a factor and has no mwh")
        return self


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instruments: list[_Entry] = []


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def parse_instruments(document: object, source: str) -> tuple[Instrument, ...]:
    """The instruments of an already parsed document; ``source`` names it in messages."""
    if document is None:
        return ()
    try:
        parsed = _Document.model_validate(document)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise ConfigError(f"{source}: {where}: {first['msg']}") from None
    return tuple(
        Instrument(
            region=entry.region.strip(),
            kind=entry.kind,
            source=entry.source.strip(),
            starts_at=_midnight(entry.valid_from),
            ends_at=_midnight(entry.valid_to) + timedelta(days=1),
            grams_per_kwh=entry.grams_per_kwh,
            mwh=entry.mwh,
        )
        for entry in parsed.instruments
    )


def load_instruments(file: Path) -> tuple[Instrument, ...]:
    try:
        text = file.read_text(encoding="utf-8")
        document: object = yaml.safe_load(text)
    except OSError as e:
        raise ConfigError(f"{file}: cannot read the instruments file: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: not valid YAML: {truncate(str(e))}") from e
    if document is not None and not isinstance(document, Mapping):
        raise ConfigError(f"{file}: expected a mapping with an 'instruments' list")
    return parse_instruments(document, str(file))


def by_region(instruments: tuple[Instrument, ...]) -> dict[str, tuple[Instrument, ...]]:
    grouped: dict[str, list[Instrument]] = {}
    for instrument in instruments:
        grouped.setdefault(instrument.region, []).append(instrument)
    return {region: tuple(group) for region, group in grouped.items()}
