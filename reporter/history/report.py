"""The sustainability report: a period's energy and location-based emissions per region, per
node role and for the read replicas, their savings against the named baseline, the data coverage
and the method, in one document that can be handed to an auditor as it is (JSON or CSV).

Pure functions over the sums the store adds up. Every figure is an estimate and the document
says so. Only location-based (grid average) emissions are computed here; market-based figures,
when instruments are declared, are reported beside them and never enter these sums or the
savings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reporter.history.samples import HOUR, MIXED, NO_ROLE, Sample
from reporter.history.series import SubjectTotal, Tally
from reporter.placement import BASELINE
from shared.core.clock import rfc3339
from shared.scoring.footprint import (
    COEFFICIENTS,
    DEFAULT_UTILISATION,
    MEMORY_ALLOWANCE_GIB_PER_VCPU,
    MEMORY_WATTS_PER_GIB,
)

TITLE = (
    "Estimated operational emissions of the Stellar cluster (location-based, GHG Protocol Scope 2)"
)


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    @property
    def hours(self) -> int:
        return int((self.end - self.start) / HOUR)


@dataclass(frozen=True, slots=True)
class Signal:
    """Where the grid intensity came from, as configured."""

    providers: Sequence[str]
    emission_factors: str
    """``lifecycle`` or ``direct`` (Electricity Maps' accounting)."""


MARKET_METHOD = (
    "GHG Protocol Scope 2 market-based, per region with declared instruments only, in a column "
    "of its own: certificate and PPA volumes (spread evenly over their periods) first, then the "
    "supplier's factor, then the residual mix, then the grid average (disclosed as "
    "gridAverageKWh); never part of the location-based figures or the savings"
)
NO_MARKET = "not reported: no contractual instruments are declared"


def method(signal: Signal, sources: Iterable[str], *, market: bool = False) -> dict[str, Any]:
    """How every figure in the report was computed, stated in the report itself."""
    return {
        "scope2Method": "location-based",
        "estimate": True,
        "emissions": "facility energy x grid carbon intensity, hour by hour",
        "energy": (
            "estimated IT power x PUE, sampled once per hour; IT power from the footprint model "
            "below, PUE per region from the region catalog"
        ),
        "gridIntensity": {
            "signal": "average carbon intensity of the region's grid zone, gCO2eq/kWh",
            "emissionFactors": signal.emission_factors,
            "providerChain": list(signal.providers),
            "sourcesSeen": sorted(set(sources)),
            "fallback": (
                "when a provider fails, its last value (stale) within its maximum age, then the "
                "zone's static annual average (static); coverage counts hours of each kind"
            ),
        },
        "footprintModel": {
            "name": "Cloud Carbon Footprint",
            "power": (
                "vCPUs x (min W + utilisation x (max W - min W)) + memory above the allowance "
                "x memory W/GiB"
            ),
            "coefficients": {
                str(cloud): {
                    "minWattsPerVcpu": round(c.min_watts_per_vcpu, 4),
                    "maxWattsPerVcpu": round(c.max_watts_per_vcpu, 4),
                    "source": c.source,
                }
                for cloud, c in COEFFICIENTS.items()
            },
            "memoryWattsPerGiB": MEMORY_WATTS_PER_GIB,
            "memoryAllowanceGiBPerVcpu": MEMORY_ALLOWANCE_GIB_PER_VCPU,
            "defaultUtilisation": DEFAULT_UTILISATION,
            "scope": "operational emissions only; embodied emissions are not included",
        },
        "nodeRoles": (
            f"the Stellar role of the pods a node runs; {MIXED} when several, {NO_ROLE} when none"
        ),
        "readReplicaBaseline": BASELINE,
        "marketBased": MARKET_METHOD if market else NO_MARKET,
        "coverage": {
            "live": "hours whose intensity was fresh",
            "stale": "hours on a provider's last value past its freshness",
            "static": "hours on the zone's annual average",
            "missing": "hours not recorded, or without any known intensity; nothing is filled in",
        },
    }


@dataclass(frozen=True, slots=True)
class Accounts:
    """A period's sums, as the store adds them up."""

    cluster: Tally
    """Every node, from the cluster samples (an hour at the worst coverage of its nodes)."""
    regions: Mapping[str, SubjectTotal]
    roles: Mapping[str, SubjectTotal]
    replicas: Tally
    replica_hours: Mapping[str, int]
    """Region → replica-hours the read replicas ran there."""
    market: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Region → its market-based figures, for the regions with declared instruments."""


def replica_hours(samples: Iterable[Sample]) -> dict[str, int]:
    """Region → replica-hours, from read-replica samples."""
    where: dict[str, int] = {}
    for sample in samples:
        for region, count in (sample.placement or {}).items():
            where[region] = where.get(region, 0) + count
    return dict(sorted(where.items()))


def _subject_json(key: str, name: str, total: Tally) -> dict[str, Any]:
    body = total.json()
    return {
        key: name,
        "energyKWh": body["energyKWh"],
        "locationKgCO2eq": body["kgCO2eq"],
        "carbonIntensity": body["carbonIntensity"],
        "coverage": body["coverage"],
    }


def build_report(
    period: Period,
    accounts: Accounts,
    *,
    signal: Signal,
    generated_at: datetime,
    market_declared: bool = False,
) -> dict[str, Any]:
    """The report document; ``market_declared``: instruments are declared for some region."""
    region_rows = []
    for name, total in accounts.regions.items():
        row = _subject_json("region", name, total.tally)
        row["pue"] = list(total.pues)
        row["intensitySources"] = list(total.sources)
        row["marketBased"] = accounts.market.get(name)
        region_rows.append(row)
    role_rows = [_subject_json("role", name, total.tally) for name, total in accounts.roles.items()]
    replicas = accounts.replicas
    cluster = accounts.cluster.json()
    seen = (source for total in accounts.regions.values() for source in total.sources)
    return {
        "title": TITLE,
        "estimate": True,
        "generatedAt": rfc3339(generated_at),
        "from": rfc3339(period.start),
        "to": rfc3339(period.end),
        "hours": period.hours,
        "totals": {
            "energyKWh": cluster["energyKWh"],
            "locationKgCO2eq": cluster["kgCO2eq"],
            "carbonIntensity": cluster["carbonIntensity"],
            "coverage": cluster["coverage"],
        },
        "regions": region_rows,
        "roles": role_rows,
        "readReplicas": {
            "energyKWh": replicas.json()["energyKWh"],
            "locationKgCO2eq": replicas.json()["kgCO2eq"],
            **replicas.savings_json(),
            "baseline": BASELINE,
            "replicaHoursByRegion": dict(accounts.replica_hours),
            "coverage": replicas.coverage_json(),
        },
        "method": method(signal, seen, market=market_declared),
    }


CSV_COLUMNS = (
    "section",
    "subject",
    "energy_kwh",
    "location_kgco2eq",
    "market_kgco2eq",
    "baseline_kgco2eq",
    "savings_kgco2eq",
    "live_hours",
    "stale_hours",
    "static_hours",
    "missing_hours",
)


def report_csv(report: Mapping[str, Any]) -> str:
    """The report as CSV: ``#`` lines state what it is and how it was computed, then one row per
    region, node role, the read replicas and the total."""
    out = io.StringIO()
    for line in _preamble(report):
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def row(section: str, subject: str, body: Mapping[str, Any], **extra: Any) -> None:
        coverage = body["coverage"]
        writer.writerow(
            [
                section,
                subject,
                body["energyKWh"],
                _blank(body.get("locationKgCO2eq")),
                _blank(extra.get("market")),
                _blank(body.get("baselineKgCO2eq")),
                _blank(body.get("savingsKgCO2eq")),
                coverage["live"],
                coverage["stale"],
                coverage["static"],
                coverage["missing"],
            ]
        )

    for region in report["regions"]:
        market = region.get("marketBased") or {}
        row("region", region["region"], region, market=market.get("kgCO2eq"))
    for role in report["roles"]:
        row("role", role["role"], role)
    row("read-replicas", "read-replicas", report["readReplicas"])
    row("total", "cluster", report["totals"])
    return out.getvalue()


def _preamble(report: Mapping[str, Any]) -> list[str]:
    method_doc = report["method"]
    intensity = method_doc["gridIntensity"]
    model = method_doc["footprintModel"]
    seen = ", ".join(intensity["sourcesSeen"]) or "none"
    lines = [
        TITLE,
        f"period {report['from']} to {report['to']} ({report['hours']} hours), "
        f"generated {report['generatedAt']}",
        f"an estimate: {method_doc['emissions']}; energy: {method_doc['energy']}",
        f"grid intensity: {intensity['signal']}, {intensity['emissionFactors']} factors; "
        f"providers {' > '.join(intensity['providerChain'])}; sources seen: {seen}",
        f"footprint model: {model['name']}, power = {model['power']}; "
        f"memory {model['memoryWattsPerGiB']} W/GiB above {model['memoryAllowanceGiBPerVcpu']} "
        f"GiB per vCPU; utilisation {model['defaultUtilisation']} unless measured",
    ]
    lines.extend(
        f"coefficients {cloud}: {c['minWattsPerVcpu']}-{c['maxWattsPerVcpu']} W per vCPU "
        f"({c['source']})"
        for cloud, c in model["coefficients"].items()
    )
    lines.append(f"read-replica baseline: {method_doc['readReplicaBaseline']}")
    lines.append(f"market-based (market_kgco2eq): {method_doc['marketBased']}")
    return lines


def _blank(value: Any) -> Any:
    return "" if value is None else value
