"""One leader among the controller's replicas: the Lease on the Karmada API server."""

from __future__ import annotations

from datetime import timedelta

from kubernetes_asyncio.client import ApiClient

from multicluster.lease import LeaderLease
from tests.fakes.karmada_api import FakeKarmadaApi
from tests.unit.multicluster.builders import NOW
from tests.unit.tiers.builders import Clock


def replica(client: ApiClient, clock: Clock, identity: str) -> LeaderLease:
    return LeaderLease(
        client,
        name="stellar",
        namespace="karmada-system",
        duration=15,
        clock=clock,
        identity=identity,
    )


async def test_the_first_replica_takes_the_lease_and_the_second_waits(
    fake: FakeKarmadaApi, client: ApiClient
) -> None:
    clock = Clock(NOW)
    a, b = replica(client, clock, "a"), replica(client, clock, "b")

    assert await a.try_once()
    assert not await b.try_once()
    clock.advance(timedelta(seconds=5))
    assert await a.try_once()  # renewed: still a's

    lease = fake.get("leases", "stellar", "karmada-system")["spec"]
    assert lease["holderIdentity"] == "a"
    assert lease["leaseDurationSeconds"] == 15
    assert lease["renewTime"] == "2026-11-26T12:00:05.000000Z"


async def test_a_leader_that_cannot_renew_steps_down_before_the_lease_expires(
    fake: FakeKarmadaApi, client: ApiClient
) -> None:
    clock = Clock(NOW)
    a = replica(client, clock, "a")
    assert await a.try_once()
    fake.fail_lease = [503, 503]

    clock.advance(timedelta(seconds=5))
    assert await a.try_once()  # one missed renewal keeps the lead
    clock.advance(timedelta(seconds=5))
    assert not await a.try_once()  # the second gives it up, 5 s before the Lease expires
    assert a.changed.is_set()


async def test_released_the_lease_goes_to_the_standby_at_once(
    fake: FakeKarmadaApi, client: ApiClient
) -> None:
    clock = Clock(NOW)
    a, b = replica(client, clock, "a"), replica(client, clock, "b")
    assert await a.try_once()

    await a.release()

    assert not a.leading
    assert await b.try_once()
    assert fake.get("leases", "stellar", "karmada-system")["spec"]["leaseTransitions"] == 1


async def test_a_leader_whose_renewal_came_late_still_hands_the_lease_over(
    fake: FakeKarmadaApi, client: ApiClient
) -> None:
    clock = Clock(NOW)
    a, b = replica(client, clock, "a"), replica(client, clock, "b")
    assert await a.try_once()
    clock.advance(timedelta(seconds=12))  # past its own step-down point, Lease not yet expired
    assert not a.leading

    await a.release()

    assert fake.get("leases", "stellar", "karmada-system")["spec"]["holderIdentity"] is None
    assert await b.try_once()


async def test_a_replica_that_never_led_leaves_the_leader_s_lease_alone(
    fake: FakeKarmadaApi, client: ApiClient
) -> None:
    clock = Clock(NOW)
    a, b = replica(client, clock, "a"), replica(client, clock, "b")
    assert await a.try_once()
    assert not await b.try_once()

    await b.release()

    assert fake.get("leases", "stellar", "karmada-system")["spec"]["holderIdentity"] == "a"
