"""Carbon outcome: read-replica emissions under each placement policy, replayed on real grid data.

Fourteen regions across AWS, GCP and Azure (eleven grid zones, nine of them replayed from
Electricity Maps' measured 2024 hours, two from the mock model), three 8-vCPU nodes per region
25-75 % full with other work, and a read pool that churns through four weeks, one per season.
Policies, all charged at the actual hourly intensity of where their pods ran:

* ``agnostic`` — least-allocated node with room, carbon ignored (the baseline);
* ``current-only/{prefer,require}`` — the webhook's ranking on current values only, with a
  scheduler that follows the top term that has room;
* ``ranked/{prefer,require}`` — the same with forecasts (the product's default 24 h horizon);
* ``kube-scheduler/{none,prefer,require}`` — the real scheduler on a real control plane, with
  the webhook's real terms (``none``: pods opt out), on the first two weeks (``bench.kube_replay``);
* ``oracle`` — perfect foresight: the region with the lowest actual emissions over the pod's real
  life among those with room.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bench.replay import (
    AgnosticSpread,
    Fleet,
    Oracle,
    Outcome,
    PodSpec,
    Policy,
    RankedPolicy,
    account,
    adherence,
    build_fleet,
    churn,
    fraction_of_oracle,
    reduction,
    replica_region,
    simulate,
)
from bench.traces import Traces, build_traces, snapshot_at
from shared.carbon.snapshot import CarbonSnapshot
from shared.core.models import Cloud, RegionInfo
from shared.regions.catalog import RegionCatalog

logger = logging.getLogger(__name__)

REGIONS: tuple[tuple[Cloud, str], ...] = (
    (Cloud.AWS, "us-west-1"),
    (Cloud.AWS, "us-east-1"),
    (Cloud.AWS, "eu-central-1"),
    (Cloud.AWS, "eu-west-2"),
    (Cloud.AWS, "ap-southeast-1"),
    (Cloud.AWS, "ap-northeast-1"),
    (Cloud.AWS, "sa-east-1"),
    (Cloud.GCP, "europe-west2"),
    (Cloud.GCP, "northamerica-northeast2"),
    (Cloud.GCP, "us-south1"),
    (Cloud.GCP, "europe-west1"),
    (Cloud.AZURE, "westus"),
    (Cloud.AZURE, "eastus"),
    (Cloud.AZURE, "westeurope"),
)
WEEKS = ("2024-01-15", "2024-04-15", "2024-07-15", "2024-10-14")
"""Mondays, one week per season."""
WEEKS_2023 = ("2023-01-16", "2023-04-17", "2023-07-17", "2023-10-16")
"""The same Mondays a year earlier, for replays that also run on 2023's data."""
HOURS = 168
FORECAST_HOURS = 48
CONCURRENCY = 16
"""Read replicas alive on average in the reference scenario: about 30 % of the fleet's room."""
SWEEP = (8, 16, 32)
KUBE_WEEKS = 2
"""Weeks replayed on the real scheduler (winter and spring): about 270 pod creations per policy."""
SEED = 0

REDUCTION_TARGET = 0.5
ORACLE_TARGET = 0.9
UNSERVED_SLACK = 0.01
"""A policy may leave at most this much more of the wanted replica-hours unserved than agnostic."""


def fleet_regions(catalog: RegionCatalog | None = None) -> tuple[RegionInfo, ...]:
    catalog = catalog or RegionCatalog.load()
    infos = []
    for cloud, name in REGIONS:
        info = catalog.resolve(name, cloud)
        if info is None or info.cloud is not cloud or info.zone is None:
            raise LookupError(f"the catalog does not map {cloud}/{name} to a grid zone")
        infos.append(info)
    return tuple(infos)


def _cached(function: Callable[[int], CarbonSnapshot]) -> Callable[[int], CarbonSnapshot]:
    cache: dict[int, CarbonSnapshot] = {}

    def get(hour: int) -> CarbonSnapshot:
        if hour not in cache:
            cache[hour] = function(hour)
        return cache[hour]

    return get


def model_policies(
    fleet: Fleet, traces: Traces, regions: Sequence[RegionInfo]
) -> dict[str, Policy]:
    forecast = _cached(lambda h: snapshot_at(traces, regions, h, forecast_hours=FORECAST_HOURS))
    current = _cached(lambda h: snapshot_at(traces, regions, h, forecast_hours=0))
    names = fleet.region_names
    nodes = Counter(node.region for node in fleet.nodes)
    return {
        "agnostic": AgnosticSpread(),
        "oracle": Oracle(fleet, traces),
        "current-only/prefer": RankedPolicy("current-only/prefer", current, names, traces),
        "current-only/require": RankedPolicy(
            "current-only/require", current, names, traces, require=True, node_counts=nodes
        ),
        "ranked/prefer": RankedPolicy("ranked/prefer", forecast, names, traces),
        "ranked/require": RankedPolicy(
            "ranked/require", forecast, names, traces, require=True, node_counts=nodes
        ),
    }


def _run_models(
    fleet: Fleet, traces: Traces, regions: Sequence[RegionInfo], pods: Sequence[PodSpec]
) -> dict[str, Outcome]:
    outcomes = {}
    for name, policy in model_policies(fleet, traces, regions).items():
        bindings = simulate(policy, fleet, pods, HOURS)
        outcomes[name] = account(name, fleet, traces, pods, bindings)
    return outcomes


def _merge(weeks: Sequence[Mapping[str, Outcome]]) -> dict[str, Outcome]:
    merged: dict[str, Outcome] = {}
    for outcomes in weeks:
        for name, outcome in outcomes.items():
            merged[name] = merged[name].merged(outcome) if name in merged else outcome
    return merged


def _r(value: float, digits: int = 4) -> float | None:
    return None if math.isnan(value) else round(value, digits)


def describe(outcomes: Mapping[str, Outcome]) -> dict[str, dict[str, Any]]:
    baseline, oracle = outcomes["agnostic"], outcomes["oracle"]
    rows = {}
    for name, outcome in outcomes.items():
        wanted = outcome.served_hours + outcome.unserved_hours
        top = sorted(outcome.region_hours.items(), key=lambda item: -item[1])[:3]
        rows[name] = {
            "g_per_replica_hour": _r(outcome.g_per_replica_hour),
            "kg_total": _r(outcome.grams / 1000),
            "pods": outcome.pods,
            "served_replica_hours": outcome.served_hours,
            "unserved_share": _r(outcome.unserved_hours / wanted if wanted else 0.0),
            "never_served_pods": outcome.never_served,
            "reduction_vs_agnostic": _r(reduction(outcome, baseline)),
            "fraction_of_oracle": _r(fraction_of_oracle(outcome, baseline, oracle)),
            "top_regions_by_hours": {
                region: round(hours / max(1, outcome.served_hours), 3) for region, hours in top
            },
        }
    return rows


def _kube_totals(
    runs: Mapping[tuple[str, str], Any],
    policy: str,
    adherences: Mapping[str, Sequence[Mapping[str, float]]],
) -> dict[str, Any]:
    """One policy's real-scheduler runs, summed over the replayed weeks."""
    mine = [run for (_, name), run in runs.items() if name == policy]
    totals: dict[str, Any] = {
        "seconds": round(sum(run.seconds for run in mine), 1),
        "pods_mutated": sum(run.mutated for run in mine),
        "pods_bound": sum(len(run.bindings) for run in mine),
    }
    if policy in adherences:
        totals["adherence"] = _mean_adherence(adherences[policy])
    return totals


def _mean_adherence(items: Sequence[Mapping[str, float]]) -> dict[str, float | None]:
    """Pod-weighted means of ``replay.adherence`` results."""
    pods = sum(item["pods"] for item in items)
    means: dict[str, float | None] = {"pods": pods}
    for key in ("followed_best_available_term", "mean_node_affinity_points_given_up"):
        total = sum(item[key] * item["pods"] for item in items if item["pods"])
        means[key] = _r(total / pods, 3) if pods else None
    return means


def _verdict(row: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    reduction_value = row["reduction_vs_agnostic"]
    fraction = row["fraction_of_oracle"]
    served_ok = row["unserved_share"] <= baseline["unserved_share"] + UNSERVED_SLACK
    return {
        "reduction_vs_agnostic": reduction_value,
        "fraction_of_oracle": fraction,
        "unserved_share": row["unserved_share"],
        "met": bool(
            served_ok
            and reduction_value is not None
            and reduction_value >= REDUCTION_TARGET
            and fraction is not None
            and fraction >= ORACLE_TARGET
        ),
        "serves_the_pool": served_ok,
    }


async def run(quick: bool, *, kube: bool) -> dict[str, Any]:
    """The model policies on every week (``quick`` changes nothing here; they take seconds),
    plus the real-scheduler replay when ``kube``."""
    catalog = RegionCatalog.load()
    infos = fleet_regions(catalog)
    fleet = build_fleet([replica_region(info) for info in infos], seed=SEED)
    weeks: list[tuple[str, Traces]] = []
    for week in WEEKS:
        start = datetime.fromisoformat(week).replace(tzinfo=UTC)
        weeks.append((week, await build_traces(infos, start, HOURS + FORECAST_HOURS, seed=SEED)))

    sweep: dict[int, dict[str, Outcome]] = {}
    per_week: dict[str, dict[str, Outcome]] = {}
    reference_pods: dict[str, tuple[PodSpec, ...]] = {}
    for concurrency in SWEEP:
        results = []
        for index, (week, traces) in enumerate(weeks):
            pods = churn(HOURS, concurrency=concurrency, seed=SEED + index)
            outcomes = _run_models(fleet, traces, infos, pods)
            results.append(outcomes)
            if concurrency == CONCURRENCY:
                per_week[week] = outcomes
                reference_pods[week] = pods
        sweep[concurrency] = _merge(results)

    reference = describe(sweep[CONCURRENCY])
    result: dict[str, Any] = {
        "regions": [
            {
                "region": info.region,
                "cloud": str(info.cloud),
                "zone": info.zone,
                "data": weeks[0][1].sources[info.zone or ""],
                "pue": fleet.region(info.region).pue,
                "replica_watts": round(fleet.region(info.region).replica_watts, 3),
                "nodes": sum(1 for n in fleet.nodes if n.region == info.region),
                "free_slots": sum(
                    n.free_millis // 2000 for n in fleet.nodes if n.region == info.region
                ),
            }
            for info in infos
        ],
        "fleet": {
            "nodes": len(fleet.nodes),
            "node_vcpus": 8,
            "replica_vcpus": 2,
            "free_replica_slots": fleet.slots(2000),
            "reference_concurrency": CONCURRENCY,
        },
        "weeks": list(WEEKS),
        "hours_per_week": HOURS,
        "pods_per_week": {week: len(pods) for week, pods in reference_pods.items()},
        "policies": reference,
        "per_week": {week: describe(outcomes) for week, outcomes in per_week.items()},
        "sweep": {
            str(concurrency): {
                name: {
                    key: row[key]
                    for key in (
                        "g_per_replica_hour",
                        "reduction_vs_agnostic",
                        "fraction_of_oracle",
                        "unserved_share",
                    )
                }
                for name, row in describe(outcomes).items()
                if name in ("agnostic", "oracle", "ranked/prefer", "ranked/require")
            }
            for concurrency, outcomes in sweep.items()
        },
    }

    basis = "model (ranked terms, scheduler follows the top term with room), all weeks"
    verdict_rows = {p: reference[f"ranked/{p}"] for p in ("prefer", "require")}
    baseline_row = reference["agnostic"]
    if kube:
        from bench.kube_replay import Scenario, replay_on_kube  # needs control-plane binaries

        chosen = weeks[:KUBE_WEEKS]
        scenarios = [Scenario(week, traces, reference_pods[week]) for week, traces in chosen]
        runs, startup = await replay_on_kube(fleet, scenarios, infos, HOURS, seed=SEED)
        labels = sorted({policy for _, policy in runs})
        merged: list[dict[str, Outcome]] = []
        adherences: dict[str, list[dict[str, float]]] = {}
        for week, traces in chosen:
            pods = reference_pods[week]
            outcomes = dict(per_week[week])
            policies = model_policies(fleet, traces, infos)
            for policy in labels:
                kube_run = runs[week, policy]
                outcomes[f"kube-scheduler/{policy}"] = account(
                    f"kube-scheduler/{policy}", fleet, traces, pods, kube_run.bindings
                )
                if policy != "none":
                    adherences.setdefault(policy, []).append(
                        adherence(policies[f"ranked/{policy}"], fleet, pods, kube_run.bindings)
                    )
            merged.append(outcomes)
        rows = describe(_merge(merged))
        result["kube_scheduler"] = {
            "weeks": [week for week, _ in chosen],
            "control_plane_startup_s": round(startup, 1),
            "pods_created": sum(len(s.pods) for s in scenarios),
            "hours_replayed": HOURS * len(chosen),
            "decision_points": sum(  # hours in which pods were created
                run.decision_points for (_, policy), run in runs.items() if policy == labels[0]
            ),
            "runs": {policy: _kube_totals(runs, policy, adherences) for policy in labels},
            "policies": rows,
        }  # fmt: skip
        if {"prefer", "require"} <= set(labels):
            basis = (
                f"kube-scheduler on weeks {', '.join(w for w, _ in chosen)} against the same "
                "weeks' agnostic and oracle"
            )
            verdict_rows = {p: rows[f"kube-scheduler/{p}"] for p in ("prefer", "require")}
            baseline_row = rows["agnostic"]

    verdicts = {p: _verdict(row, baseline_row) for p, row in verdict_rows.items()}
    result["basis"] = basis
    result["reduction_vs_agnostic"] = {p: v["reduction_vs_agnostic"] for p, v in verdicts.items()}
    result["fraction_of_oracle"] = {p: v["fraction_of_oracle"] for p, v in verdicts.items()}
    result["targets"] = {
        "reduction_vs_agnostic": f">= {REDUCTION_TARGET}",
        "fraction_of_oracle": f">= {ORACLE_TARGET}",
        "unserved_share": f"<= agnostic + {UNSERVED_SLACK}",
        **verdicts,
    }
    return result
