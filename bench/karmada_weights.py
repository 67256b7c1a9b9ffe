"""Karmada static weights: which weight rule divides a pool greenest, replayed on 2024 grid data.

A ``Divided``/``Weighted`` pool of ``REPLICAS`` replicas over member clusters in the benchmark's
regions, re-weighed every hour by the controller's own decision (``multicluster.decide``: 24 h
expected intensity from the replayed forecast, 10 % margin, 1 h dwell, at most half the replicas
moved per change, floor weight 1), and charged at each hour's actual intensity of where Karmada's
division put the replicas. Compared with equal weights (what Karmada does without a list) and an
hourly oracle (every replica in the cluster that is actually cleanest that hour).

``python -m bench.karmada_weights`` prints one row per fleet and rule: emissions against equal
weights, the share of the oracle's saving reached, and re-weighings per policy per dwell period.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.carbon import WEEKS, fleet_regions
from bench.traces import Traces, build_traces, snapshot_at
from multicluster.decide import ClusterCarbon, Rules, Verdict, decide
from multicluster.weights import divide, moved
from shared.core.models import RegionInfo
from shared.scoring.ranking import rank

REPLICAS = 12
HOURS = 168
FLEETS = {
    # A typical Karmada fleet: one cluster per cloud and continent.
    "four-clusters": ("us-east-1", "eu-central-1", "westeurope", "europe-west1"),
    "fourteen-regions": None,  # the whole benchmark fleet (bench.carbon.REGIONS)
}
RULES = {
    "linear (exponent 1)": 1.0,
    "webhook square (exponent 2)": 2.0,
    "cube (exponent 3)": 3.0,
    "fourth power (exponent 4)": 4.0,
    "sixth power (exponent 6)": 6.0,
}


def replay(
    traces: Traces, regions: Sequence[RegionInfo], exponent: float, *, hours: int = HOURS
) -> dict[str, float]:
    """Carbon-weighted, equal-weighted and oracle emissions (replica × gCO2eq/kWh summed over
    hours), the number of re-weighings and the replicas they moved, over ``hours`` hours of
    ``traces``."""
    rules = Rules(exponent=exponent)
    names = [info.region for info in regions]
    zones = {info.region: info.zone or "" for info in regions}
    weights: dict[str, int] = {}
    last: datetime | None = None
    emitted = equal = oracle = 0.0
    changes = moves = 0
    equal_split = divide(REPLICAS, dict.fromkeys(names, 1))
    split = equal_split
    for hour in range(hours):
        now = traces.time(hour)
        ranking = rank(snapshot_at(traces, regions, hour), names, now=now, horizon_hours=24)
        carbon = {
            score.region: ClusterCarbon(score.expected_g_per_kwh, live=True)
            for score in ranking.scores
        }
        decision = decide(
            eligible=names,
            carbon=carbon,
            current=weights,
            workloads=[REPLICAS],
            last_change=last,
            now=now,
            rules=rules,
        )
        if decision.verdict is Verdict.WEIGH:
            weights, last = dict(decision.weights), now
            changes += 1
        previous, split = split, divide(REPLICAS, weights or dict.fromkeys(names, 1))
        moves += moved(previous, split)
        actual = {name: traces.at(zones[name], hour) for name in names}
        emitted += sum(count * actual[name] for name, count in split.items())
        equal += sum(count * actual[name] for name, count in equal_split.items())
        oracle += REPLICAS * min(actual.values())
    return {
        "emitted": emitted,
        "equal": equal,
        "oracle": oracle,
        "changes": changes,
        "moved": moves,
    }


async def run(weeks: Sequence[str] = WEEKS) -> list[dict[str, Any]]:
    every = fleet_regions()
    rows = []
    for fleet, names in FLEETS.items():
        regions = [i for i in every if names is None or i.region in names]
        traces = [
            await build_traces(regions, datetime.fromisoformat(w).replace(tzinfo=UTC), HOURS + 72)
            for w in weeks
        ]
        for label, exponent in RULES.items():
            totals = dict.fromkeys(("emitted", "equal", "oracle", "changes", "moved"), 0.0)
            for trace in traces:
                for key, value in replay(trace, regions, exponent).items():
                    totals[key] += value
            saved = totals["equal"] - totals["emitted"]
            rows.append(
                {
                    "fleet": fleet,
                    "rule": label,
                    "vsEqualWeights": round(1 - totals["emitted"] / totals["equal"], 3),
                    "ofOracle": round(saved / (totals["equal"] - totals["oracle"]), 3),
                    "reweighsPerDwell": round(
                        totals["changes"]
                        / (len(traces) * HOURS / (Rules().dwell / timedelta(hours=1))),
                        3,
                    ),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    for row in asyncio.run(run()):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
