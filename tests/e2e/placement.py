"""A placement table: where pods landed, next to each region's intensity and preference weight."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

REGION_LABEL: Final = "topology.kubernetes.io/region"


@dataclass(frozen=True)
class RegionPlacement:
    """One row of a placement table."""

    region: str
    cloud: str
    intensity: float | None
    """gCO2eq/kWh the placement was decided on; None when unknown."""
    weight: int | None
    """Preferred node-affinity weight the pods got for this region; None for no term."""
    pods: tuple[str, ...]


def preference_weights(affinity_terms: Sequence[Mapping[str, Any]], key: str) -> dict[str, int]:
    """Region → weight from preferred node-affinity terms (as the API returns them) on ``key``."""
    weights: dict[str, int] = {}
    for term in affinity_terms:
        for expression in term["preference"].get("matchExpressions") or []:
            if expression["key"] == key and expression["operator"] == "In":
                for region in expression["values"]:
                    weights[region] = int(term["weight"])
    return weights


def placement_rows(
    *,
    pod_nodes: Mapping[str, str],
    node_regions: Mapping[str, str],
    region_clouds: Mapping[str, str],
    intensities: Mapping[str, float],
    weights: Mapping[str, int] | None = None,
) -> list[RegionPlacement]:
    """Rows for every region with nodes, greenest first, with the pods bound there."""
    by_region: dict[str, list[str]] = {region: [] for region in region_clouds}
    for pod, node in sorted(pod_nodes.items()):
        by_region.setdefault(node_regions.get(node, "?"), []).append(pod)
    rows = [
        RegionPlacement(
            region=region,
            cloud=region_clouds.get(region, "?"),
            intensity=intensities.get(region),
            weight=(weights or {}).get(region),
            pods=tuple(pods),
        )
        for region, pods in by_region.items()
    ]
    rows.sort(key=lambda r: (r.intensity is None, r.intensity or 0.0, r.region))
    return rows


def placement_table(rows: Sequence[RegionPlacement], *, title: str = "") -> str:
    """A fixed-width text table: region, cloud, intensity, weight, pod count and names."""
    header = ("region", "cloud", "gCO2eq/kWh", "weight", "pods", "placed")
    body = [
        (
            row.region,
            row.cloud,
            "unknown" if row.intensity is None else f"{row.intensity:.0f}",
            "-" if row.weight is None else str(row.weight),
            str(len(row.pods)),
            ", ".join(row.pods) or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    right = {2, 3, 4}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    lines = [title] if title else []
    lines += [line(header), line(["-" * w for w in widths])]
    lines += [line(cells) for cells in body]
    return "\n".join(lines)
