"""Following the grid: what moving long-lived read replicas with carbon tiers buys, and costs.

The replay (``bench.follow_replay``) runs the operator's read pool for the four seasonal weeks of
2024, in the read-pool replay's two fleet shapes and pool sizes, under five policies: the
scheduler alone (``agnostic``), today's webhook decided once (``create-time``), the product's
tiers with the descheduler (``following``), an hourly ``oracle`` with free moves, and the same
free moves in the order of the product's ranking (``ranked-hourly``). Following also
runs under a few other descheduler and tier settings (full run only), to show what they change.

Targets for ``following`` over the four weeks: at least 95 % of the oracle's savings, at most one
eviction per replica per day, and never fewer ready replicas than the PodDisruptionBudget's
``minAvailable``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.carbon import FORECAST_HOURS, HOURS, SEED, WEEKS, WEEKS_2023, fleet_regions
from bench.descheduler import Profile
from bench.follow_replay import Tally, Week, run_week, total
from bench.readpool import SHAPES, operator_pool
from bench.replay import build_fleet, replica_region
from bench.spread import zoned
from bench.traces import build_traces
from shared.scoring.tiers import TierPolicy

POOLS = (3, 6, 20)
ORACLE_TARGET = 0.95
EVICTIONS_TARGET = 1.0
"""Evictions per replica per day, at most."""

PROFILE = Profile()
"""The descheduler profile of docs/tiers.md, a PDB of ``replicas - 1``, 20 minutes' catch-up."""
VARIANTS: Mapping[str, tuple[Profile, TierPolicy]] = {
    "minPodAge 2h": (dataclasses.replace(PROFILE, min_pod_age_minutes=120), TierPolicy()),
    "minPodAge 6h": (dataclasses.replace(PROFILE, min_pod_age_minutes=360), TierPolicy()),
    "catch-up 10 min": (dataclasses.replace(PROFILE, catch_up_minutes=10), TierPolicy()),
    "catch-up 30 min": (dataclasses.replace(PROFILE, catch_up_minutes=30), TierPolicy()),
    "no hysteresis": (PROFILE, TierPolicy(margin=0.0, dwell=timedelta(0))),
}
"""Following under other settings: the full run's sensitivity rows."""


def describe(tallies: Mapping[str, Tally], size: int) -> dict[str, dict[str, Any]]:
    """The figures of each policy against the same weeks' agnostic and oracle."""
    baseline = tallies["agnostic"].g_per_replica_hour
    best = tallies["oracle"].g_per_replica_hour
    rows: dict[str, dict[str, Any]] = {}
    for name, tally in tallies.items():
        g = tally.g_per_replica_hour
        rows[name] = {
            "g_per_replica_hour": _r(g),
            "reduction_vs_agnostic": _r(1 - g / baseline),
            "fraction_of_oracle": (
                _r((baseline - g) / (baseline - best)) if baseline > best else None
            ),
            "evictions": tally.evictions,
            "evictions_per_replica_day": _r(tally.evictions / tally.replica_days),
            "futile_evictions": tally.futile_evictions,
            "replica_hours_not_ready": _r(tally.not_ready_minutes / 60, 2),
            "replica_hours_unserved": _r((tally.wanted_minutes - tally.served_minutes) / 60, 2),
            "min_ready": tally.min_ready,
            "tier_changes": tally.tier_changes,
        }
    return rows


def verdict(row: Mapping[str, Any], min_available: int) -> dict[str, Any]:
    """Following's three targets on one pool's four weeks."""
    fraction, rate, low = (
        row["fraction_of_oracle"],
        row["evictions_per_replica_day"],
        row["min_ready"],
    )
    return {
        "fraction_of_oracle": fraction,
        "evictions_per_replica_day": rate,
        "min_ready": low,
        "min_available": min_available,
        "met": bool(
            fraction is not None
            and fraction >= ORACLE_TARGET
            and rate <= EVICTIONS_TARGET
            and low is not None
            and low >= min_available
        ),
    }


def _r(value: float, digits: int = 4) -> float | None:
    return None if math.isnan(value) else round(value, digits)


async def run(quick: bool) -> dict[str, Any]:
    """Every shape × pool × policy over the four seasonal weeks of 2024, with the sensitivity
    rows, and of 2023 without them; ``quick``: the first week of 2024, pools 3 and 6, no
    sensitivity rows."""
    policy = TierPolicy()
    pools = POOLS[:2] if quick else POOLS
    result: dict[str, Any] = {
        "hours_per_week": HOURS,
        "profile": dataclasses.asdict(PROFILE),
        "tier_policy": _policy(policy),
        "variants": {
            name: {"profile": dataclasses.asdict(p), "tier_policy": _policy(t)}
            for name, (p, t) in ({} if quick else VARIANTS).items()
        },
        **await _replay(WEEKS[:1] if quick else WEEKS, pools, {} if quick else VARIANTS),
    }
    if not quick:
        result["2023"] = await _replay(WEEKS_2023, pools, {})
    return result


async def _replay(
    weeks: Sequence[str], pools: Sequence[int], variants: Mapping[str, tuple[Profile, TierPolicy]]
) -> dict[str, Any]:
    """One set of weeks: every shape and pool, and following's targets per case."""
    infos = fleet_regions()
    pool = operator_pool()
    traces = {}
    for week in weeks:
        start = datetime.fromisoformat(week).replace(tzinfo=UTC)
        traces[week] = await build_traces(infos, start, HOURS + FORECAST_HOURS, seed=SEED)
    result: dict[str, Any] = {"weeks": list(weeks), "shapes": {}, "targets": {}}
    for shape, per_zone in SHAPES.items():
        fleet = build_fleet(
            [replica_region(info) for info in infos], nodes_per_region=3 * per_zone, seed=SEED
        )
        model = zoned(fleet, nodes_per_zone=per_zone)
        entry: dict[str, Any] = {"nodes": len(fleet.nodes), "pools": {}}
        for size in pools:
            per_week = {
                week: run_week(
                    Week(model, pool, traces[week], infos, size), PROFILE, TierPolicy(), variants
                )
                for week in weeks
            }
            summed = {
                name: total(tallies[name] for tallies in per_week.values())
                for name in per_week[weeks[0]]
            }
            rows = describe(summed, size)
            entry["pools"][str(size)] = {
                "min_available": size - PROFILE.unavailable,
                "all_weeks": rows,
                "per_week": {week: describe(tallies, size) for week, tallies in per_week.items()},
            }
            result["targets"][f"{shape}/{size}"] = verdict(
                rows["following"], size - PROFILE.unavailable
            )
        result["shapes"][shape] = entry
    return result


def _policy(policy: TierPolicy) -> dict[str, Any]:
    fields = {k: v for k, v in dataclasses.asdict(policy).items() if k != "dwell"}
    return {**fields, "dwell_hours": policy.dwell.total_seconds() / 3600}


def table(result: Mapping[str, Any]) -> list[str]:
    """Markdown rows: per shape and pool, each policy over all weeks, then per week."""
    lines = [
        "| shape | pool | policy | reduction vs agnostic | of oracle | evictions / replica / day "
        "(futile) | replica-h not ready | min ready / minAvailable |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shape, entry in result["shapes"].items():
        for size, rows in entry["pools"].items():
            for policy, row in rows["all_weeks"].items():
                lines.append(
                    f"| {shape} | {size} | {policy} | {_pct(row['reduction_vs_agnostic'])} | "
                    f"{_pct(row['fraction_of_oracle'])} | {row['evictions_per_replica_day']:.2f} "
                    f"({row['futile_evictions']}) | {row['replica_hours_not_ready']:g} | "
                    f"{row['min_ready']} / {rows['min_available']} |"
                )
    lines += ["", "Per week (create-time → following, oracle; evictions / replica / day):", ""]
    lines += ["| shape | pool | week | create-time | following | oracle | evictions |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for shape, entry in result["shapes"].items():
        for size, rows in entry["pools"].items():
            for week, row in rows["per_week"].items():
                lines.append(
                    f"| {shape} | {size} | {week} | "
                    f"{_pct(row['create-time']['reduction_vs_agnostic'])} | "
                    f"{_pct(row['following']['reduction_vs_agnostic'])} | "
                    f"{_pct(row['oracle']['reduction_vs_agnostic'])} | "
                    f"{row['following']['evictions_per_replica_day']:.2f} |"
                )
    return lines


def table_2023(result: Mapping[str, Any]) -> list[str]:
    """Markdown rows for the 2023 weeks: per shape and pool, the policies over all four."""
    lines = [
        "| shape | pool | create-time | following | evictions / replica / day (futile) "
        "| ranked-hourly | oracle |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, entry in result["shapes"].items():
        for size, rows in entry["pools"].items():
            r = rows["all_weeks"]
            lines.append(
                f"| {shape} | {size} | {_both(r['create-time'])} | {_both(r['following'])} | "
                f"{r['following']['evictions_per_replica_day']:.2f} "
                f"({r['following']['futile_evictions']}) | {_both(r['ranked-hourly'])} | "
                f"{_pct(r['oracle']['reduction_vs_agnostic'])} |"
            )
    return lines


def _both(row: Mapping[str, Any]) -> str:
    return f"{_pct(row['reduction_vs_agnostic'])} / {_pct(row['fraction_of_oracle'])}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
