"""An application factory over hand-built clusters and snapshots, served on loopback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from reporter.app import create_app
from reporter.settings import ReporterSettings
from shared.carbon.snapshot import CarbonSnapshot
from shared.core.clock import fixed
from shared.core.models import Cloud
from shared.regions.catalog import RegionCatalog
from shared.settings import CarbonSettings
from tests.unit.reporter.cluster import (
    NOW,
    Cluster,
    FixedSnapshot,
    carbon,
    node,
    pod,
    region_info,
    snapshot,
)

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]

US_WEST_2 = region_info("us-west-2", zone="US-NW-BPAT", pue=1.15, location="US West (Oregon)")
EU_WEST_1 = region_info("eu-west-1", zone="IE", pue=1.15, location="Europe (Ireland)")
EUROPE_WEST1 = region_info("europe-west1", cloud=Cloud.GCP, zone="BE", pue=1.09)


def demo_snapshot() -> CarbonSnapshot:
    return snapshot(
        carbon(US_WEST_2, 120.0, forecast=[110, 90, 95, 130], renewable_pct=80.0),
        carbon(EU_WEST_1, 300.0),
        carbon(EUROPE_WEST1, 180.0, forecast=[170, 160, 200]),
    )


def demo_cluster() -> Cluster:
    nodes = [
        node("aws-usw2-a", "us-west-2"),
        node("aws-usw2-b", "us-west-2", vcpus=16, memory_gib=64),
        node("aws-euw1-a", "eu-west-1"),
        node("gcp-euw1-a", "europe-west1", cloud=Cloud.GCP),
    ]
    pods = [
        pod("validator-0", "aws-euw1-a", role="validator"),
        pod("horizon-0", "gcp-euw1-a", role="horizon"),
        pod("read-0", "aws-usw2-a", carbon_aware=True),
        pod(
            "read-1",
            "aws-usw2-b",
            carbon_aware=True,
            constraint="topologySpread:topology.kubernetes.io/zone",
        ),
        pod("read-2", "aws-euw1-a"),
    ]
    return Cluster(nodes, pods)


@pytest.fixture
def reporter_client(aiohttp_client: Any) -> ClientFactory:
    """``await reporter_client(snapshot=..., cluster=..., **create_app kwargs)``."""

    async def make(
        *,
        carbon_snapshot: CarbonSnapshot | None = None,
        cluster: Cluster | None = None,
        settings: ReporterSettings | None = None,
        **kwargs: Any,
    ) -> Client:
        app = create_app(
            settings or ReporterSettings(carbon=CarbonSettings(extra_regions=("eu-north-1",))),
            snapshot_source=kwargs.pop("snapshot_source", None)
            or FixedSnapshot(carbon_snapshot if carbon_snapshot is not None else demo_snapshot()),
            inventory=cluster if cluster is not None else demo_cluster(),
            catalog=kwargs.pop("catalog", None) or RegionCatalog.load(),
            clock=kwargs.pop("clock", None) or fixed(NOW),
            **kwargs,
        )
        client: Client = await aiohttp_client(app)
        return client

    return make
