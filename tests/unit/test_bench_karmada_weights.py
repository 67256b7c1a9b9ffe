"""The Karmada weight-rule replay charges replicas where Karmada's division put them."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.karmada_weights import REPLICAS, replay
from bench.traces import Traces
from shared.core.models import Cloud, RegionInfo

START = datetime(2024, 1, 15, tzinfo=UTC)
REGIONS = [
    RegionInfo(cloud=Cloud.AWS, region="clean", zone="Z-CLEAN"),
    RegionInfo(cloud=Cloud.AWS, region="dirty", zone="Z-DIRTY"),
]


def test_a_steady_clean_grid_takes_the_whole_pool_in_one_re_weighing() -> None:
    hours = 6
    traces = Traces(
        START,
        hours + 72,
        {"Z-CLEAN": (100.0,) * (hours + 72), "Z-DIRTY": (500.0,) * (hours + 72)},
        {"Z-CLEAN": "test", "Z-DIRTY": "test"},
    )

    result = replay(traces, REGIONS, 4.0, hours=hours)

    assert result["equal"] == hours * (REPLICAS / 2) * (100 + 500)
    assert result["oracle"] == hours * REPLICAS * 100
    # The first hour moves half the pool (exactly the share allowed) onto the clean grid, and the
    # weights then hold: the dirty cluster's floor weight of 1 wins no replica of 12.
    assert result["changes"] == 1
    assert result["moved"] == REPLICAS / 2
    assert result["emitted"] == result["oracle"]
