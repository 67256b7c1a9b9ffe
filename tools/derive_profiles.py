"""Derive the mock provider's grid profiles from Electricity Maps hourly CSV files.

Reads one ``<ZONE>_<YEAR>_hourly.csv`` per grid zone (Electricity Maps public dataset layout) and
writes two files into the package's data folder:

* ``grid-profiles-<YEAR>.json`` — per zone: the standard-time UTC offset used for local time, the
  annual mean lifecycle intensity, month-by-local-hour multipliers, monthly levels, renewable share
  by month and local hour, day-to-day variability and hour-to-hour AR(1) residual parameters.
  This is what ``shared.carbon.providers.mock`` draws its daily shapes from.
* ``electricitymaps-hourly-<YEAR>.csv.gz`` — a slimmed copy of the hourly data (zone, UTC time,
  lifecycle and direct intensity, renewable %) for replaying real grid behaviour in benchmarks.

Electricity Maps data is licensed under the Open Database License (ODbL 1.0): the JSON carries the
attribution, and the data folder's README states it for both files.

Usage: ``python -m tools.derive_profiles DATA_DIR [--output-dir shared/data]``
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import itertools
import json
import math
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path


def attribution(year: int) -> str:
    """The ODbL notice that travels with the data and everything derived from it."""
    return (
        f"Electricity Maps (electricitymaps.com), {year} hourly data, "
        "Open Database License (ODbL 1.0)"
    )


DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parents[1] / "shared" / "data"

# Standard time (no daylight saving), so a zone's "local hour" means the same sun position all
# year; shifting with DST would smear the solar dip across two hours for half the year.
STANDARD_UTC_OFFSET_HOURS: dict[str, float] = {
    "AU-NSW": 10,
    "AU-VIC": 10,
    "BR-SP": -3,
    "CA-ON": -5,
    "CL-SIC": -4,
    "DE-LU": 1,
    "GB": 0,
    "IN-WE": 5.5,
    "JP-TK": 9,
    "KR": 9,
    "SG": 8,
    "US-CAL-CISO": -8,
    "US-MIDA-PJM": -5,
    "US-NY-NYIS": -5,
    "US-TEX-ERCO": -6,
    "ZA": 2,
}

_FILE_PATTERN = re.compile(r"^(?P<zone>[A-Z][A-Z0-9-]*)_(?P<year>\d{4})_hourly\.csv$")
_COL_TIME = "Datetime (UTC)"
_COL_DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"
_COL_LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"
_COL_RENEWABLE = "Renewable Percentage"


class DerivationError(Exception):
    """The input files cannot be turned into profiles (missing columns, gaps, bad numbers)."""


@dataclass(frozen=True, slots=True)
class HourRow:
    """One hour of one zone."""

    at: datetime
    lca: float
    direct: float
    renewable: float


@dataclass(frozen=True, slots=True)
class ZoneFile:
    zone: str
    year: int
    path: Path


def find_zone_files(data_dir: Path) -> list[ZoneFile]:
    """The hourly files in ``data_dir``, sorted by zone."""
    found = []
    for path in sorted(data_dir.iterdir()):
        match = _FILE_PATTERN.match(path.name)
        if match:
            found.append(ZoneFile(match["zone"], int(match["year"]), path))
    if not found:
        raise DerivationError(f"no <ZONE>_<YEAR>_hourly.csv files in {data_dir}")
    return found


def read_zone(path: Path) -> list[HourRow]:
    """Parse one zone file and check it is a gap-free hourly series."""
    rows: list[HourRow] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {_COL_TIME, _COL_DIRECT, _COL_LCA, _COL_RENEWABLE} - set(reader.fieldnames or ())
        if missing:
            raise DerivationError(f"{path.name}: missing columns {sorted(missing)}")
        for line, record in enumerate(reader, start=2):
            try:
                at = datetime.strptime(record[_COL_TIME], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                row = HourRow(
                    at,
                    float(record[_COL_LCA]),
                    float(record[_COL_DIRECT]),
                    float(record[_COL_RENEWABLE]),
                )
            except ValueError as e:
                raise DerivationError(f"{path.name}:{line}: {e}") from e
            if row.lca <= 0 or not 0 <= row.renewable <= 100:
                raise DerivationError(f"{path.name}:{line}: implausible values {record}")
            rows.append(row)
    for before, after in itertools.pairwise(rows):
        if after.at - before.at != timedelta(hours=1):
            raise DerivationError(f"{path.name}: not hourly between {before.at} and {after.at}")
    if len(rows) < 24 * 28:
        raise DerivationError(f"{path.name}: only {len(rows)} rows")
    return rows


def _lag1_autocorrelation(pairs: Sequence[tuple[float, float]], mean: float) -> float:
    numerator = sum((a - mean) * (b - mean) for a, b in pairs)
    denominator = sum((a - mean) ** 2 for a, _ in pairs)
    return numerator / denominator if denominator else 0.0


def derive_profile(rows: Sequence[HourRow], utc_offset_hours: float) -> dict[str, object]:
    """Summary statistics of one zone, in the zone's standard local time."""
    offset = timedelta(hours=utc_offset_hours)
    local = [(row, row.at + offset) for row in rows]
    annual_mean = statistics.fmean(row.lca for row in rows)

    by_month_hour: dict[tuple[int, int], list[HourRow]] = defaultdict(list)
    by_day: dict[date, list[float]] = defaultdict(list)
    for row, at in local:
        by_month_hour[at.month, at.hour].append(row)
        by_day[at.date()].append(row.lca)
    months = sorted({month for month, _ in by_month_hour})
    if months != list(range(1, 13)) or len(by_month_hour) != 12 * 24:
        raise DerivationError("need every local hour of every month")

    # The month mean is the mean of its 24 hourly means, so each month's multipliers average to
    # exactly 1 even where local time cuts a partial day off the month's edge.
    hour_means = {
        key: statistics.fmean(r.lca for r in group) for key, group in by_month_hour.items()
    }
    month_mean = {m: statistics.fmean(hour_means[m, h] for h in range(24)) for m in months}
    multipliers = [[hour_means[m, h] / month_mean[m] for h in range(24)] for m in months]
    renewable = [
        [statistics.fmean(r.renewable for r in by_month_hour[m, h]) for h in range(24)]
        for m in months
    ]

    # Day-to-day: full local days only; the level relative to the month carries weather (windless
    # weeks, cloudy spells) that the mean daily shape cannot.
    full_days = sorted(day for day, values in by_day.items() if len(values) == 24)
    daily_mean = {day: statistics.fmean(by_day[day]) for day in full_days}
    day_ratio = {day: daily_mean[day] / month_mean[day.month] for day in full_days}
    log_day = {day: math.log(ratio) for day, ratio in day_ratio.items()}
    log_day_mean = statistics.fmean(log_day.values())
    day_pairs = [
        (log_day[day], log_day[day + timedelta(days=1)])
        for day in full_days
        if day + timedelta(days=1) in log_day
    ]

    # Hour-to-hour: what is left after month shape and day level, as a log residual.
    residuals: list[tuple[datetime, float]] = []
    for row, at in local:
        day = at.date()
        if day not in day_ratio:
            continue
        expected = month_mean[at.month] * multipliers[at.month - 1][at.hour] * day_ratio[day]
        residuals.append((row.at, math.log(row.lca / expected)))
    residual_values = [value for _, value in residuals]
    residual_mean = statistics.fmean(residual_values)
    residual_sd = statistics.pstdev(residual_values)
    hour_pairs = [
        (a, b)
        for (at_a, a), (at_b, b) in itertools.pairwise(residuals)
        if at_b - at_a == timedelta(hours=1)
    ]
    hour_rho = _lag1_autocorrelation(hour_pairs, residual_mean)

    return {
        "utc_offset_hours": utc_offset_hours,
        "hours": len(rows),
        "annual_mean_g": round(annual_mean, 1),
        "annual_mean_direct_g": round(statistics.fmean(row.direct for row in rows), 1),
        "renewable_mean_pct": round(statistics.fmean(row.renewable for row in rows), 1),
        "monthly_level": [round(month_mean[m] / annual_mean, 4) for m in months],
        "hourly_multipliers": [[round(v, 4) for v in month] for month in multipliers],
        "renewable_pct": [[round(v, 1) for v in month] for month in renewable],
        "daily": {
            "mean_sd_rel_annual": round(statistics.pstdev(daily_mean.values()) / annual_mean, 4),
            "level_sd": round(statistics.pstdev(log_day.values()), 4),
            "level_rho": round(_lag1_autocorrelation(day_pairs, log_day_mean), 4),
        },
        "hourly_residual": {
            "rho": round(hour_rho, 4),
            "sigma": round(residual_sd * math.sqrt(max(0.0, 1 - hour_rho**2)), 4),
            "marginal_sd": round(residual_sd, 4),
        },
    }


def profiles_document(zones: dict[str, dict[str, object]], year: int) -> dict[str, object]:
    return {
        "attribution": attribution(year),
        "year": year,
        "signal": "lifecycle (LCA) carbon intensity, gCO2eq/kWh",
        "local_time": "UTC + utc_offset_hours (standard time, no daylight saving)",
        "fields": {
            "monthly_level": "month mean / annual mean, months 1-12 in local time",
            "hourly_multipliers": "[month][local hour] mean / that month's mean (rows average 1)",
            "renewable_pct": "[month][local hour] mean renewable share, percent",
            "daily.mean_sd_rel_annual": "std of daily means / annual mean",
            "daily.level_sd": "std of log(daily mean / month mean)",
            "daily.level_rho": "lag-1 day autocorrelation of log(daily mean / month mean)",
            "hourly_residual": "AR(1) of log(value / (month mean x multiplier x day level)): "
            "rho, innovation sigma, marginal_sd",
        },
        "zones": zones,
    }


def slim_csv_gz(series: dict[str, list[HourRow]]) -> bytes:
    """The hourly data as one gzipped CSV, byte-for-byte reproducible (no gzip timestamp)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["zone", "datetime_utc", "lca_g_per_kwh", "direct_g_per_kwh", "renewable_pct"])
    for zone in sorted(series):
        for row in series[zone]:
            writer.writerow(
                [
                    zone,
                    row.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"{row.lca:g}",
                    f"{row.direct:g}",
                    f"{row.renewable:g}",
                ]
            )
    return gzip.compress(text.getvalue().encode("utf-8"), compresslevel=9, mtime=0)


def _parse_offsets(values: Sequence[str]) -> dict[str, float]:
    offsets: dict[str, float] = {}
    for value in values:
        zone, sep, hours = value.partition("=")
        try:
            if not sep:
                raise ValueError("expected ZONE=HOURS")
            offsets[zone] = float(hours)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"--utc-offset {value!r}: {e}") from e
    return offsets


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("data_dir", type=Path, help="folder of <ZONE>_<YEAR>_hourly.csv files")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="where to write the profiles and the slimmed hourly file (default: shared/data)",
    )
    parser.add_argument(
        "--utc-offset",
        action="append",
        default=[],
        metavar="ZONE=HOURS",
        help="standard-time UTC offset for a zone not in the built-in table (repeatable)",
    )
    args = parser.parse_args(argv)

    try:
        offsets = STANDARD_UTC_OFFSET_HOURS | _parse_offsets(args.utc_offset)
        files = find_zone_files(args.data_dir)
        years = {f.year for f in files}
        if len(years) != 1:
            raise DerivationError(f"files from several years: {sorted(years)}")
        (year,) = years
        series: dict[str, list[HourRow]] = {}
        profiles: dict[str, dict[str, object]] = {}
        for zone_file in files:
            if zone_file.zone not in offsets:
                raise DerivationError(f"no UTC offset for {zone_file.zone}; pass --utc-offset")
            rows = read_zone(zone_file.path)
            series[zone_file.zone] = rows
            profiles[zone_file.zone] = derive_profile(rows, offsets[zone_file.zone])
    except (DerivationError, OSError, argparse.ArgumentTypeError) as e:
        print(f"derive_profiles: {e}", file=sys.stderr)
        return 1

    args.output_dir.mkdir(parents=True, exist_ok=True)
    profiles_path = args.output_dir / f"grid-profiles-{year}.json"
    profiles_path.write_text(
        json.dumps(profiles_document(profiles, year), separators=(",", ":")) + "\n",
        encoding="utf-8",
    )
    hourly_path = args.output_dir / f"electricitymaps-hourly-{year}.csv.gz"
    hourly_path.write_bytes(slim_csv_gz(series))
    print(f"wrote {profiles_path} ({profiles_path.stat().st_size} bytes, {len(profiles)} zones)")
    print(f"wrote {hourly_path} ({hourly_path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
