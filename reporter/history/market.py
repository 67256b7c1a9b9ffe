"""Market-based emissions of a region from its declared instruments, hour by hour, in the GHG
Protocol Scope 2 order: certificates and PPAs first, then a supplier's factor, then the residual
mix, and only then the grid average (disclosed as such). Pure functions.

A certificate's or PPA's volume is spread evenly over the hours of its period; what an hour does
not use is not carried to another. These figures stand beside the location-based ones and never
enter them or the savings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reporter.history.instruments import Instrument, InstrumentKind
from reporter.history.samples import Sample


@dataclass(slots=True)
class _Split:
    grams: float = 0.0
    certificate_kwh: float = 0.0
    supplier_kwh: float = 0.0
    residual_mix_kwh: float = 0.0
    grid_average_kwh: float = 0.0
    unknown_kwh: float = 0.0


def _factor(instruments: Iterable[Instrument], kind: InstrumentKind) -> float | None:
    return next((i.grams_per_kwh for i in instruments if i.kind is kind), None)


def market_based(
    samples: Iterable[Sample],
    instruments: Sequence[Instrument],
    *,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """One region's market-based figures over its ``samples`` (hourly, location-based)."""
    split = _Split()
    for sample in samples:
        valid = [i for i in instruments if i.covers(sample.hour)]
        left = sample.energy_wh / 1000
        for instrument in valid:
            if not instrument.kind.has_volume or instrument.mwh is None or left <= 0:
                continue
            used = min(left, instrument.mwh * 1000 / instrument.hours)
            split.grams += used * instrument.grams_per_kwh
            split.certificate_kwh += used
            left -= used
        if left <= 0:
            continue
        supplier = _factor(valid, InstrumentKind.SUPPLIER)
        residual = _factor(valid, InstrumentKind.RESIDUAL_MIX)
        if supplier is not None:
            split.grams += left * supplier
            split.supplier_kwh += left
        elif residual is not None:
            split.grams += left * residual
            split.residual_mix_kwh += left
        elif sample.grams is not None and sample.energy_wh > 0:
            # The grid average, the guidance's last resort, disclosed as such.
            split.grams += left * sample.grams / (sample.energy_wh / 1000)
            split.grid_average_kwh += left
        else:
            split.unknown_kwh += left
    overlapping = [i for i in instruments if i.starts_at < end and i.ends_at > start]
    return {
        "kgCO2eq": round(split.grams / 1000, 6),
        "certificateKWh": round(split.certificate_kwh, 6),
        "supplierKWh": round(split.supplier_kwh, 6),
        "residualMixKWh": round(split.residual_mix_kwh, 6),
        "gridAverageKWh": round(split.grid_average_kwh, 6),
        "unknownKWh": round(split.unknown_kwh, 6),
        "instruments": [i.json() for i in overlapping],
    }
