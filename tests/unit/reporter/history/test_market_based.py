"""Market-based emissions from declared instruments: the Scope 2 hierarchy hour by hour, kept
apart from the location-based figures, and instrument files refused with a clear message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reporter.history.instruments import Instrument, load_instruments, parse_instruments
from reporter.history.market import market_based
from reporter.history.report import Accounts, Period, Signal, build_report
from reporter.history.samples import Coverage, Kind, Sample
from reporter.history.series import SubjectTotal, Tally
from shared.core.errors import ConfigError

DAY = datetime(2026, 11, 26, tzinfo=UTC)
HOUR = timedelta(hours=1)
SIGNAL = Signal(("electricitymaps", "static"), "lifecycle")


def hour(index: int, *, kwh: float = 10.0, intensity: float | None = 300.0) -> Sample:
    return Sample(
        DAY + index * HOUR,
        Kind.REGION,
        "eu-west-1",
        members=2,
        energy_wh=kwh * 1000,
        grams=kwh * intensity if intensity is not None else None,
        coverage=Coverage.LIVE if intensity is not None else Coverage.MISSING,
        intensity=intensity,
        source="electricitymaps",
        pue=1.135,
    )


def instruments(*entries: dict[str, object]) -> list[Instrument]:
    defaults = {"region": "eu-west-1", "source": "registry", "validFrom": "2026-11-26"}
    return list(
        parse_instruments(
            {"instruments": [{**defaults, "validTo": "2026-11-26", **e} for e in entries]}, "test"
        )
    )


def test_certificates_cover_their_hourly_share_and_the_rest_falls_to_the_grid_average() -> None:
    # 48 MWh over one day: 2 MWh = 2000 kWh an hour, more than the 10 kWh used.
    declared = instruments({"kind": "certificate", "mwh": 48, "gramsPerKwh": 0})
    figures = market_based([hour(0)], declared, start=DAY, end=DAY + HOUR)
    assert figures["kgCO2eq"] == 0
    assert figures["certificateKWh"] == 10


def test_an_instrument_volume_is_spread_over_its_period_not_spent_at_once() -> None:
    # 0.096 MWh over 24 hours: 4 kWh an hour at 0 g; the other 6 kWh at the grid's 300 g.
    declared = instruments({"kind": "ppa", "mwh": 0.096, "gramsPerKwh": 0})
    figures = market_based([hour(0), hour(1)], declared, start=DAY, end=DAY + 2 * HOUR)
    assert figures["certificateKWh"] == 8
    assert figures["gridAverageKWh"] == 12
    assert figures["kgCO2eq"] == pytest.approx(12 * 300 / 1000)


def test_a_supplier_factor_comes_before_the_residual_mix() -> None:
    declared = instruments(
        {"kind": "residual-mix", "gramsPerKwh": 450},
        {"kind": "supplier", "gramsPerKwh": 200},
    )
    figures = market_based([hour(0)], declared, start=DAY, end=DAY + HOUR)
    assert figures["supplierKWh"] == 10
    assert figures["residualMixKWh"] == 0
    assert figures["kgCO2eq"] == 2.0


def test_hours_outside_an_instruments_period_are_not_covered_by_it() -> None:
    declared = instruments({"kind": "supplier", "gramsPerKwh": 200})
    late = hour(24)  # the next day
    figures = market_based([late], declared, start=DAY, end=DAY + 25 * HOUR)
    assert figures["supplierKWh"] == 0
    assert figures["gridAverageKWh"] == 10


def test_energy_without_any_factor_is_unknown_not_zero() -> None:
    declared = instruments({"kind": "certificate", "mwh": 0.024, "gramsPerKwh": 0})
    figures = market_based([hour(0, intensity=None)], declared, start=DAY, end=DAY + HOUR)
    assert figures["certificateKWh"] == 1
    assert figures["unknownKWh"] == 9


def test_the_report_keeps_market_based_figures_out_of_location_based_ones() -> None:
    samples = [hour(0), hour(1)]
    period = Period(DAY, DAY + 2 * HOUR)
    oregon = Tally(hours=2, energy_wh=20_000, grams=6000, energy_with_grams_wh=20_000)
    plain = Accounts(
        cluster=oregon,
        regions={"eu-west-1": SubjectTotal(oregon)},
        roles={},
        replicas=Tally(hours=2),
        replica_hours={},
    )
    declared = instruments({"kind": "supplier", "gramsPerKwh": 0})
    figures = market_based(samples, declared, start=period.start, end=period.end)
    with_market = replace(plain, market={"eu-west-1": figures})
    location = build_report(period, plain, signal=SIGNAL, generated_at=DAY)
    market = build_report(
        period, with_market, signal=SIGNAL, generated_at=DAY, market_declared=True
    )
    (region,) = market["regions"]
    assert region["marketBased"]["kgCO2eq"] == 0
    assert region["locationKgCO2eq"] == location["regions"][0]["locationKgCO2eq"] == 6.0
    assert market["totals"] == location["totals"]
    assert market["readReplicas"] == location["readReplicas"]
    assert location["regions"][0]["marketBased"] is None
    assert location["method"]["marketBased"].startswith("not reported")
    assert "never part of the location-based figures" in market["method"]["marketBased"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "certificate", "gramsPerKwh": 0}, "needs mwh"),
        ({"kind": "supplier", "gramsPerKwh": 100, "mwh": 5}, "has no mwh"),
        ({"kind": "green", "gramsPerKwh": 0}, "instruments.0.kind"),
        ({"kind": "supplier", "gramsPerKwh": -1}, "gramsPerKwh"),
        ({"kind": "supplier", "gramsPerKwh": 1, "validTo": "2026-01-01"}, "before validFrom"),
        ({"kind": "supplier", "gramsPerKwh": 1, "source": ""}, "source"),
    ],
)
def test_an_invalid_instrument_is_refused_naming_the_field(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        instruments(entry)


def test_an_instruments_file_is_read_from_yaml(tmp_path: Path) -> None:
    file = tmp_path / "instruments.yaml"
    file.write_text(
        "instruments:\n"
        "  - {region: eu-west-1, kind: ppa, source: 'Wind PPA', validFrom: 2026-01-01,\n"
        "     validTo: 2026-12-31, mwh: 120, gramsPerKwh: 0}\n"
    )
    (ppa,) = load_instruments(file)
    assert ppa.hours == 365 * 24
    assert ppa.json()["validTo"] == "2026-12-31"
    with pytest.raises(ConfigError, match="cannot read"):
        load_instruments(tmp_path / "missing.yaml")
    file.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_instruments(file)
