"""Paging through 5,000 nodes with limit and opaque continue tokens."""

from __future__ import annotations

from reporter.params import encode_continue
from shared.carbon.snapshot import CarbonSnapshot
from shared.core.models import Cloud
from tests.unit.reporter.cluster import Cluster, carbon, node, pod, region_info, snapshot
from tests.unit.reporter.conftest import ClientFactory
from tests.unit.reporter.contract import call

API = "/api/v1/sustainability"
REGIONS = ("us-west-2", "eu-west-1", "europe-west1", "ap-southeast-1")


def big_cluster(count: int = 5000) -> Cluster:
    nodes = [
        node(
            f"node-{i:05d}",
            REGIONS[i % len(REGIONS)],
            cloud=Cloud.GCP if REGIONS[i % len(REGIONS)] == "europe-west1" else Cloud.AWS,
            vcpus=2 + i % 15,
        )
        for i in range(count)
    ]
    pods = [pod(f"read-{i}", f"node-{i * 7:05d}") for i in range(200)]
    return Cluster(nodes, pods)


def big_snapshot() -> CarbonSnapshot:
    return snapshot(*(carbon(region_info(name), 100.0 + 50 * i) for i, name in enumerate(REGIONS)))


async def test_every_one_of_5000_nodes_is_listed_exactly_once_across_pages(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client(cluster=big_cluster(), carbon_snapshot=big_snapshot())
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        url = f"{API}/nodes?limit=700" + (f"&continue={token}" if token else "")
        status, body = await call(client, url)
        assert status == 200
        assert body["total"] == 5000
        seen.extend(n["name"] for n in body["nodes"])
        assert body["remainingItemCount"] == 5000 - len(seen)
        pages += 1
        token = body["continue"]
        if token is None:
            break
    assert pages == 8
    assert seen == sorted(seen)
    assert len(set(seen)) == 5000


async def test_a_region_filter_pages_through_that_region_only(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client(cluster=big_cluster(), carbon_snapshot=big_snapshot())
    _, first = await call(client, f"{API}/nodes?region=eu-west-1&limit=1000")
    assert first["total"] == 1250
    assert {n["region"] for n in first["nodes"]} == {"eu-west-1"}
    _, second = await call(
        client, f"{API}/nodes?region=eu-west-1&limit=1000&continue={first['continue']}"
    )
    assert len(second["nodes"]) == 250
    assert second["continue"] is None
    assert first["nodes"][-1]["name"] < second["nodes"][0]["name"]


async def test_a_token_survives_nodes_coming_and_going_between_pages(
    reporter_client: ClientFactory,
) -> None:
    cluster = Cluster([node(f"n{i}", "us-west-2") for i in range(6)])
    client = await reporter_client(cluster=cluster)
    _, first = await call(client, f"{API}/nodes?limit=3")
    assert [n["name"] for n in first["nodes"]] == ["n0", "n1", "n2"]
    cluster.replace([node(f"n{i}", "us-west-2") for i in (0, 3, 5, 7)])
    _, second = await call(client, f"{API}/nodes?limit=3&continue={first['continue']}")
    assert [n["name"] for n in second["nodes"]] == ["n3", "n5", "n7"]


async def test_a_token_for_a_name_past_the_end_gives_an_empty_last_page(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/nodes?continue={encode_continue('zzz')}")
    assert status == 200
    assert body["nodes"] == []
    assert body["continue"] is None
