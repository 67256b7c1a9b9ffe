"""The controller against a fake Karmada API server: it writes only the weight list and its
annotations under its own field manager, re-reads on a stale write, never forces another
manager's list, freezes on stale data, rides out an unreachable API server, and writes only while
it holds the Lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client import ApiClient, Configuration

from multicluster.decide import Rules
from multicluster.karmada import FIELD_MANAGER, KarmadaWatches, KarmadaWriter
from multicluster.lease import LeaderLease
from multicluster.loop import WeightLoop
from multicluster.metrics import KarmadaMetrics
from multicluster.settings import KarmadaMode
from shared.carbon.snapshot import CarbonSnapshot
from shared.regions.catalog import RegionCatalog
from tests.fakes.karmada_api import APPLY, FakeKarmadaApi
from tests.fakes.kube_api import FAST, WAIT
from tests.unit.multicluster.builders import CLUSTERS, GRID, NOW, cluster, policy, snapshot
from tests.unit.tiers.builders import Clock


class Carbon:
    def __init__(self, value: CarbonSnapshot) -> None:
        self.value = value

    def __call__(self) -> CarbonSnapshot:
        return self.value


class Controller:
    """One controller replica wired to the fake: watches, writer, lease, loop, metrics."""

    def __init__(
        self,
        api: ApiClient,
        *,
        mode: KarmadaMode,
        clock: Clock,
        carbon: Carbon,
        identity: str = "replica-a",
    ) -> None:
        self.watches = KarmadaWatches(api, settings=FAST)
        self.lease = LeaderLease(
            api,
            name="stellar-carbon-karmada",
            namespace="karmada-system",
            duration=15,
            clock=clock,
            identity=identity,
        )
        self.metrics = KarmadaMetrics(mode)
        self.tracked: frozenset[str] = frozenset()
        self.loop = WeightLoop(
            watches=self.watches,
            writer=KarmadaWriter(
                api, clock=clock, event_namespace="karmada-system", instance=identity
            ),
            lease=self.lease,
            resolve=RegionCatalog.load().resolve,
            track=self._track,
            snapshot_source=carbon,
            clock=clock,
            rules=Rules(max_moved_share=1.0),  # the moved share is test_decide's
            metrics=self.metrics,
            apply=mode is KarmadaMode.APPLY,
            horizon_hours=24,
            interval=60,
        )

    def _track(self, regions: frozenset[str]) -> None:
        self.tracked = regions

    async def start(self) -> None:
        await self.watches.start()
        assert await self.watches.wait_synced(WAIT)
        assert await self.lease.try_once()

    async def settle(self, fake: FakeKarmadaApi) -> None:
        """Wait until the watches have seen everything the fake holds now."""
        async with asyncio.timeout(WAIT):
            while {p.resource_version for p in self.watches.watched_policies().values()} != {  # noqa: ASYNC110 - a watch has no event to await
                o["metadata"]["resourceVersion"]
                for r in ("propagationpolicies", "clusterpropagationpolicies")
                for o in fake.objects[r].values()
                if (o["metadata"].get("annotations") or {}).get("stellar.org/carbon-aware")
            }:
                await asyncio.sleep(0.01)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def carbon() -> Carbon:
    return Carbon(snapshot(GRID))


async def controller(
    client: ApiClient, clock: Clock, carbon: Carbon, mode: KarmadaMode = KarmadaMode.APPLY
) -> AsyncIterator[Controller]:
    replica = Controller(client, mode=mode, clock=clock, carbon=carbon)
    await replica.start()
    try:
        yield replica
    finally:
        await replica.watches.stop()


@pytest.fixture
async def applying(client: ApiClient, clock: Clock, carbon: Carbon) -> AsyncIterator[Controller]:
    async for replica in controller(client, clock, carbon):
        yield replica


@pytest.fixture
async def dry_run(client: ApiClient, clock: Clock, carbon: Carbon) -> AsyncIterator[Controller]:
    async for replica in controller(client, clock, carbon, KarmadaMode.DRY_RUN):
        yield replica


def weights_of(obj: dict[str, Any]) -> dict[str, int] | None:
    preference = obj["spec"]["placement"]["replicaScheduling"].get("weightPreference") or {}
    if "staticWeightList" not in preference:
        return None
    return {
        entry["targetCluster"]["clusterNames"][0]: entry["weight"]
        for entry in preference["staticWeightList"]
    }


async def test_an_opted_in_policy_gets_carbon_weights_under_the_controllers_field_manager(
    fake: FakeKarmadaApi, applying: Controller
) -> None:
    await fake.put("propagationpolicies", policy())
    await fake.put("propagationpolicies", policy("other", annotated=False))
    await applying.settle(fake)

    outcomes = await applying.loop.cycle()

    assert [(str(o.ref), o.written) for o in outcomes] == [
        ("PropagationPolicy/stellar/read-pool", "applied")
    ]
    written = fake.get("propagationpolicies", "read-pool", "stellar")
    assert weights_of(written) == {"member-be": 100, "member-de": 1, "member-us": 1}
    annotations = written["metadata"]["annotations"]
    assert annotations["stellar.org/carbon-ranking"] == "member-be=120,member-de=380,member-us=400"
    assert annotations["stellar.org/carbon-decided-at"] == "2026-11-26T12:00:00Z"
    assert annotations["stellar.org/carbon-source"] == "electricitymaps"
    assert annotations["stellar.org/carbon-weights"] == "member-be=100,member-de=1,member-us=1"
    (apply,) = fake.applies
    assert (apply.content_type, apply.field_manager, apply.force) == (APPLY, FIELD_MANAGER, False)
    assert set(apply.body) == {"apiVersion", "kind", "metadata", "spec"}
    assert apply.body["spec"] == {
        "placement": {
            "replicaScheduling": {
                "weightPreference": {
                    "staticWeightList": written["spec"]["placement"]["replicaScheduling"][
                        "weightPreference"
                    ]["staticWeightList"]
                }
            }
        }
    }
    assert weights_of(fake.get("propagationpolicies", "other", "stellar")) is None
    assert [e["reason"] for e in fake.events] == ["CarbonWeightsApplied"]
    assert applying.tracked == {"europe-west1", "eu-central-1", "us-east-1"}
    exposition = applying.metrics.exposition().decode()
    policy_label = 'policy="PropagationPolicy/stellar/read-pool"'
    assert (
        f'stellar_carbon_karmada_weight{{cluster="member-be",{policy_label}}} 100.0' in exposition
    )
    assert (
        f'stellar_carbon_karmada_estimated_replicas{{cluster="member-be",{policy_label}}} 12.0'
        in exposition
    )
    equal = f'{{{policy_label},weights="equal"}} 300.0'
    assert f"stellar_carbon_karmada_estimated_intensity_grams_per_kwh{equal}" in exposition
    (view,) = applying.metrics.views
    assert view.regions == {
        "member-be": "europe-west1",
        "member-de": "eu-central-1",
        "member-us": "us-east-1",
    }
    assert view.decided_at == NOW


async def test_a_second_cycle_within_the_dwell_writes_nothing(
    fake: FakeKarmadaApi, applying: Controller, carbon: Carbon
) -> None:
    await fake.put("propagationpolicies", policy())
    await applying.settle(fake)
    await applying.loop.cycle()
    await applying.settle(fake)
    carbon.value = snapshot({**GRID, "europe-west1": 500.0, "us-east-1": 90.0})

    (outcome,) = await applying.loop.cycle()

    assert outcome.verdict == "dwell"
    assert len(fake.applies) == 1


async def test_dry_run_proposes_in_an_annotation_and_leaves_the_placement_alone(
    fake: FakeKarmadaApi, dry_run: Controller
) -> None:
    await fake.put("propagationpolicies", policy(weights={"member-de": 5}))
    await dry_run.settle(fake)

    await dry_run.loop.cycle()

    written = fake.get("propagationpolicies", "read-pool", "stellar")
    assert weights_of(written) == {"member-de": 5}
    assert written["metadata"]["annotations"]["stellar.org/carbon-proposed-weights"] == (
        "member-be=100,member-de=1,member-us=1"
    )
    assert "spec" not in fake.applies[0].body
    assert [e["reason"] for e in fake.events] == ["CarbonWeightsProposed"]


async def test_duplicated_policies_are_reported_once_and_never_changed(
    fake: FakeKarmadaApi, applying: Controller
) -> None:
    await fake.put(
        "clusterpropagationpolicies",
        policy("everywhere", namespace=None, scheduling={"replicaSchedulingType": "Duplicated"}),
    )
    await applying.settle(fake)

    await applying.loop.cycle()
    (outcome,) = await applying.loop.cycle()

    assert outcome.verdict == "not-weighable"
    assert fake.applies == []
    assert [(e["reason"], e["metadata"]["namespace"]) for e in fake.events] == [
        ("CarbonWeightsNotApplicable", "karmada-system")
    ]


async def test_a_policy_changed_since_it_was_read_is_read_again_and_then_weighed(
    fake: FakeKarmadaApi, applying: Controller
) -> None:
    await fake.put("propagationpolicies", policy())
    await applying.settle(fake)
    # A user narrows the policy; the watch has not delivered it yet.
    changed = policy(clusterAffinity={"exclude": ["member-us"]})
    await fake.put("propagationpolicies", changed, silently=True)

    (outcome,) = await applying.loop.cycle()

    assert outcome.written == "applied"
    assert len(fake.applies) == 2
    assert weights_of(fake.get("propagationpolicies", "read-pool", "stellar")) == {
        "member-be": 100,
        "member-de": 1,
    }


async def test_weights_owned_by_another_manager_are_reported_not_forced(
    fake: FakeKarmadaApi, applying: Controller
) -> None:
    await fake.put("propagationpolicies", policy(weights={"member-de": 1, "member-us": 1}))
    fake.weight_owner[("propagationpolicies", "stellar", "read-pool")] = "kubectl"
    await applying.settle(fake)

    (outcome,) = await applying.loop.cycle()

    assert outcome.written == "conflict"
    assert not any(apply.force for apply in fake.applies)
    assert weights_of(fake.get("propagationpolicies", "read-pool", "stellar")) == {
        "member-de": 1,
        "member-us": 1,
    }
    assert fake.events[-1]["reason"] == "CarbonWeightsConflict"
    assert fake.events[-1]["type"] == "Warning"


async def test_stale_carbon_data_freezes_the_weights(
    fake: FakeKarmadaApi, applying: Controller, carbon: Carbon
) -> None:
    await fake.put("propagationpolicies", policy(weights={"member-de": 100, "member-us": 10}))
    await applying.settle(fake)
    carbon.value = snapshot(GRID, stale=["eu-central-1"])

    (outcome,) = await applying.loop.cycle()

    assert outcome.verdict == "frozen"
    assert fake.applies == []
    (event,) = fake.events
    assert event["reason"] == "CarbonWeightsFrozen"
    assert "carbon data not live for member-de" in event["message"]
    assert "electricitymaps(stale)" in event["message"]


async def test_a_cluster_without_a_region_is_named_in_an_event_and_keeps_the_floor(
    fake: FakeKarmadaApi, applying: Controller
) -> None:
    await fake.put("clusters", cluster("member-lab", "basement", provider=None))
    await fake.put("propagationpolicies", policy())
    async with asyncio.timeout(WAIT):
        while "member-lab" not in applying.watches.members():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await applying.settle(fake)

    await applying.loop.cycle()

    assert weights_of(fake.get("propagationpolicies", "read-pool", "stellar"))["member-lab"] == 1  # type: ignore[index]
    (event,) = [e for e in fake.events if e["reason"] == "CarbonClusterWithoutRegion"]
    assert "member-lab (region 'basement' is not in the region catalog" in event["message"]


async def test_a_refused_write_is_counted_and_tried_again_next_cycle(
    fake: FakeKarmadaApi, applying: Controller
) -> None:
    await fake.put("propagationpolicies", policy())
    await applying.settle(fake)
    fake.fail_apply = [503]

    (first,) = await applying.loop.cycle()
    (second,) = await applying.loop.cycle()

    assert (first.written, second.written) == ("failed", "applied")
    assert 'stellar_carbon_karmada_writes_total{result="failed"} 1.0' in (
        applying.metrics.exposition().decode()
    )


async def test_only_the_lease_holder_writes_and_the_standby_takes_over_when_it_stops(
    fake: FakeKarmadaApi, applying: Controller, client: ApiClient, clock: Clock, carbon: Carbon
) -> None:
    await fake.put("propagationpolicies", policy())
    standby = Controller(client, mode=KarmadaMode.APPLY, clock=clock, carbon=carbon, identity="b")
    await standby.watches.start()
    try:
        assert await standby.watches.wait_synced(WAIT)
        await standby.settle(fake)
        assert not await standby.lease.try_once()
        assert await standby.loop.cycle() == []
        assert fake.applies == []

        clock.advance(timedelta(seconds=16))  # the leader stopped renewing
        assert not applying.lease.leading
        assert await standby.lease.try_once()
        assert [o.written for o in await standby.loop.cycle()] == ["applied"]
        assert (
            fake.get("leases", "stellar-carbon-karmada", "karmada-system")["spec"]["holderIdentity"]
            == "b"
        )
    finally:
        await standby.watches.stop()


async def test_an_unreachable_api_server_is_waited_out_and_nothing_is_lost(
    clock: Clock, carbon: Carbon
) -> None:
    api = FakeKarmadaApi()
    for each in CLUSTERS:
        await api.put("clusters", each)
    await api.put("propagationpolicies", policy())
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    port = server.port
    await server.close()  # the Karmada API server goes away before the controller starts
    async with ApiClient(Configuration(host=f"http://127.0.0.1:{port}")) as client:
        replica = Controller(client, mode=KarmadaMode.APPLY, clock=clock, carbon=carbon)
        await replica.watches.start()
        try:
            assert await replica.loop.cycle() == []
            async with asyncio.timeout(WAIT):
                while replica.watches.last_error is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)

            back = TestServer(api.app(), host="127.0.0.1", port=port)
            await back.start_server()
            try:
                assert await replica.watches.wait_synced(WAIT)
                assert await replica.lease.try_once()
                assert [o.written for o in await replica.loop.cycle()] == ["applied"]
            finally:
                await api.shutdown()
                await back.close()
        finally:
            await replica.watches.stop()
