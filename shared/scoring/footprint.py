"""Per-node operational carbon footprint, the Cloud Carbon Footprint (CCF) way. Pure maths, no I/O.

    node W      = vCPUs * (min W + utilisation * (max W - min W)) + extra memory GiB * 0.392 W
    gCO2eq/h    = W / 1000 * PUE * grid gCO2eq/kWh
    kgCO2eq/day = gCO2eq/h * 24 / 1000

Every number here is an estimate: per-vCPU watts are provider-wide averages of SPECpower results,
utilisation is assumed to be 50 % unless measured, and PUE and grid intensity are averages. The
method, its sources and a worked example are in docs/footprint.md.

Example (the worked example there): an 8-vCPU AWS node at 50 % draws 8 * (0.74 + 0.5 * 2.76) =
16.96 W; with AWS's PUE 1.135 on a 379.069 gCO2eq/kWh grid that is 7.30 gCO2eq/h.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from shared.core.models import Cloud, RegionInfo


@dataclass(frozen=True, slots=True)
class PowerCoefficients:
    """Watts one vCPU draws idle and at full load, for hardware of unknown microarchitecture."""

    min_watts_per_vcpu: float
    max_watts_per_vcpu: float
    source: str


# CCF methodology (microsite/docs/HowItWorks/Methodology.md, "Compute", cloud-carbon-footprint
# commit b7a049c7): the average (AWS, Azure) or median (GCP) of the SPECpower min/max watts of every
# microarchitecture the provider uses, for when the instance's microarchitecture is unknown. For GCP
# and Azure the code at the same commit uses slightly different figures (GCP MIN/MAX_WATTS_MEDIAN
# 0.68/4.11, Azure MIN/MAX_WATTS_AVG 0.74/3.54); the documented ones are used here because they are
# what the published method states and what a reader can check.
COEFFICIENTS: Final[Mapping[Cloud, PowerCoefficients]] = {
    Cloud.AWS: PowerCoefficients(0.74, 3.5, "CCF methodology, AWS average"),
    Cloud.GCP: PowerCoefficients(0.71, 4.26, "CCF methodology, GCP median"),
    Cloud.AZURE: PowerCoefficients(0.78, 3.76, "CCF methodology, Azure average"),
    # Unknown or own hardware: the mean of the three provider figures, a mid-range modern server.
    Cloud.ONPREM: PowerCoefficients(
        (0.74 + 0.71 + 0.78) / 3, (3.5 + 4.26 + 3.76) / 3, "mean of the CCF provider figures"
    ),
}

MEMORY_WATTS_PER_GIB: Final = 0.392
"""CCF's memory coefficient (0.000392 kWh per GB-hour: the mean of Crucial's ~0.375 W/GB and
Micron's ~0.4083 W/GB for DDR4). Those are DIMM and instance-spec gigabytes, i.e. binary, so it
applies per GiB."""

MEMORY_ALLOWANCE_GIB_PER_VCPU: Final = 2.0
"""Memory already inside the per-vCPU watts. SPECpower servers include their memory, so CCF charges
memory only above the SPECpower average GB per physical chip (AWS and Azure). That average is about
2 GB per hardware thread for the Intel generations clouds mostly run (Cascade Lake 98.12 GB per chip
of 48 threads), so a compute-optimised node (2 GiB/vCPU) adds nothing and a general-purpose one
(4 GiB/vCPU) adds 2 GiB per vCPU. CCF's GCP path charges all memory, which it notes overestimates;
the allowance is applied to every cloud here so the same node costs the same wherever it runs."""

DEFAULT_UTILISATION: Final = 0.5
"""CCF's fallback when utilisation is not measured: the projected 2020 average server utilisation of
hyperscale data centres (2016 U.S. Data Center Energy Usage Report)."""

DEFAULT_PUE: Final[Mapping[Cloud, float]] = {
    Cloud.AWS: 1.135,  # CCF methodology, AWS
    Cloud.GCP: 1.1,  # CCF methodology, Google's published fleet average
    Cloud.AZURE: 1.185,  # CCF methodology, "PUE" section (its Appendix I says 1.125)
}

ONPREM_DEFAULT_PUE: Final = 1.5
"""For own data centres, unless configured: a typical enterprise facility. Industry-wide surveys
(Uptime Institute) have put the average around 1.5-1.6 for years; hyperscale sites run near 1.1, a
small server room can exceed 2. Set the real figure when it is known."""


@dataclass(frozen=True, slots=True)
class PowerEstimate:
    """Estimated electrical draw of one node at the IT equipment (before PUE)."""

    watts: float
    cpu_watts: float
    memory_watts: float
    utilisation: float
    """CPU utilisation used, 0-1."""
    utilisation_measured: bool
    """False when ``DEFAULT_UTILISATION`` was assumed."""
    method: str
    """Coefficient set used, e.g. ``ccf-aws``; ``ccf-onprem`` for unknown or own hardware."""


@dataclass(frozen=True, slots=True)
class Footprint:
    """Operational emissions of a constant power draw. An estimate, like its inputs."""

    power_watts: float
    pue: float
    g_per_kwh: float
    g_per_hour: float
    """gCO2eq per hour."""
    kg_per_day: float
    """kgCO2eq per day."""


def estimate_node_power(
    *, vcpus: float, memory_gib: float, cloud: Cloud | None, utilisation: float | None = None
) -> PowerEstimate:
    """Node power from its vCPUs, memory and (when measured) CPU utilisation, 0-1.

    ``cloud`` None means unknown hardware and uses the on-prem coefficients.
    """
    _require(vcpus, "vcpus")
    _require(memory_gib, "memory_gib")
    if utilisation is not None:
        _require(utilisation, "utilisation", maximum=1.0)
    used = DEFAULT_UTILISATION if utilisation is None else float(utilisation)
    kind = cloud or Cloud.ONPREM
    coefficients = COEFFICIENTS[kind]
    per_vcpu = coefficients.min_watts_per_vcpu + used * (
        coefficients.max_watts_per_vcpu - coefficients.min_watts_per_vcpu
    )
    cpu_watts = vcpus * per_vcpu
    extra_memory = max(0.0, memory_gib - MEMORY_ALLOWANCE_GIB_PER_VCPU * vcpus)
    memory_watts = extra_memory * MEMORY_WATTS_PER_GIB
    return PowerEstimate(
        watts=cpu_watts + memory_watts,
        cpu_watts=cpu_watts,
        memory_watts=memory_watts,
        utilisation=used,
        utilisation_measured=utilisation is not None,
        method=f"ccf-{kind}",
    )


def footprint(power_watts: float, pue: float, g_per_kwh: float) -> Footprint:
    """Emissions of ``power_watts`` drawn continuously in a facility of ``pue`` on a grid of
    ``g_per_kwh`` gCO2eq/kWh."""
    _require(power_watts, "power_watts")
    _require(pue, "pue", minimum=1.0)
    _require(g_per_kwh, "g_per_kwh")
    g_per_hour = power_watts / 1000 * pue * g_per_kwh
    return Footprint(
        power_watts=power_watts,
        pue=pue,
        g_per_kwh=g_per_kwh,
        g_per_hour=g_per_hour,
        kg_per_day=g_per_hour * 24 / 1000,
    )


def default_pue(cloud: Cloud | None, onprem: float = ONPREM_DEFAULT_PUE) -> float:
    """The provider's fleet-wide PUE; ``onprem`` for own data centres and unknown clouds."""
    _require(onprem, "onprem", minimum=1.0)
    if cloud is None or cloud is Cloud.ONPREM:
        return onprem
    return DEFAULT_PUE[cloud]


def region_pue(region: RegionInfo, onprem: float = ONPREM_DEFAULT_PUE) -> float:
    """The region's own PUE from the catalog when published, else ``default_pue`` for its cloud."""
    if region.pue is not None:
        return region.pue
    return default_pue(region.cloud, onprem)


def _require(value: float, name: str, *, minimum: float = 0.0, maximum: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if value < minimum or value > maximum:
        bounds = (
            f">= {minimum:g}" if maximum == math.inf else f"between {minimum:g} and {maximum:g}"
        )
        raise ValueError(f"{name} must be {bounds}, got {value}")
