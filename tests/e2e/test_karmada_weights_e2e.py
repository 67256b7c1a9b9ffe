"""The Karmada carbon controller against a real Karmada: weights written, replicas divided, moved.

Everything but the grid is real: ``python -m multicluster`` in ``apply`` mode (interval, dwell and
Lease in seconds through its settings) as a ServiceAccount holding only the roles docs/karmada.md
documents, Karmada v1.18.2's scheduler and controllers, three member clusters with kwok nodes, and
the operator's read-pool StatefulSet propagated by a carbon-aware ``Divided``/``Weighted`` policy
the user applies with server-side apply. The fake carbon API serves the members' regions.

The story: the pool is divided mostly into the greenest member; the grid flips and, within one
dwell period, the weights change and the replicas move, the ready replicas across the members
never below ``MIN_READY`` at any moment a watch reports, at most one re-division per dwell period.
Then the carbon API fails: nothing changes. The user re-applies the policy with a change of
their own: both survive. The controller is killed and the grid turns back: nothing changes.
Apart from that, a policy restricted to two members gets weights for those two only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pytest
from kubernetes_asyncio import client as k8s

from multicluster.karmada import FIELD_MANAGER
from multicluster.policies import RANKING_ANNOTATION, SOURCE_ANNOTATION, WEIGHTS_ANNOTATION
from multicluster.weights import divide
from tests.e2e.carbon_api import CarbonApiThread, fleet_carbon_api
from tests.e2e.karmada import Karmada
from tests.e2e.karmada_controller import KarmadaController, controller_kubeconfig
from tests.e2e.karmada_pool import (
    FleetPool,
    apply_as_user,
    propagate_read_pool,
    read_policy,
    read_pool_policy,
    running,
    scheduled,
    weights_of,
)
from tests.e2e.kube import eventually, fresh_namespace
from tests.e2e.operator import READ_POOL, READ_POOL_SELECTOR
from tests.e2e.processes import logs_on_failure
from tests.fakes.custom_api import FakeCustomApi

pytestmark = pytest.mark.e2e

AWS, GCP, AZURE = "aws-us-west-2", "gcp-europe-west1", "azure-southeastasia"
REGIONS: Final = {AWS: "us-west-2", GCP: "europe-west1", AZURE: "southeastasia"}
REPLICAS: Final = 8
MAX_MOVED_SHARE: Final = 0.5
MIN_READY: Final = REPLICAS - int(MAX_MOVED_SHARE * REPLICAS)
"""One re-division moves at most half the pool, and Karmada neither orders a move (the dirty
member may scale down before the green one's replicas are ready) nor keeps a surge: the ready
replicas may dip by what one re-division moves, never more."""
DWELL_SECONDS: Final = 20.0
SLACK_SECONDS: Final = 15.0
"""Carbon refresh (1 s), the controller's cycle (1 s) and Karmada's reaction, on busy cores."""
SETTLE_SECONDS: Final = 150.0
# us-west-2 greenest: 100, 35 and the floor, 1 (gCO2eq/kWh ratios 1 : 1.3 : 4.5).
GREEN_WEST: Final = {"us-west-2": 100.0, "europe-west1": 130.0, "southeastasia": 450.0}
# Flipped: us-west-2 the dirtiest, europe-west1 greenest. The static annual averages (the fallback
# in an outage) rank us-west-2 greenest again: a controller acting on them would move the pool.
GREEN_EUROPE: Final = {"us-west-2": 450.0, "europe-west1": 100.0, "southeastasia": 130.0}


@pytest.fixture(scope="module")
def fake_carbon_api() -> FakeCustomApi:
    return fleet_carbon_api(GREEN_WEST)


def set_grid(api: CarbonApiThread, values: Mapping[str, float]) -> None:
    for region, value in values.items():
        api.fake.regions[region].intensity = value


@pytest.fixture(scope="module")
def kubeconfig_for_controller(karmada: Karmada, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return controller_kubeconfig(karmada, tmp_path_factory.mktemp("controller") / "kubeconfig")


@pytest.fixture
def controller(
    request: pytest.FixtureRequest,
    kubeconfig_for_controller: Path,
    carbon_api: CarbonApiThread,
    tmp_path: Path,
) -> Iterator[KarmadaController]:
    set_grid(carbon_api, GREEN_WEST)
    process = KarmadaController(
        kubeconfig_for_controller,
        carbon_api,
        tmp_path,
        dwell=DWELL_SECONDS,
        max_moved_share=MAX_MOVED_SHARE,
    )
    try:
        process.start()
        with logs_on_failure(request.config, process.service):
            yield process
    finally:
        process.service.stop()


# --- what Karmada made of the user's policy -----------------------------------------------------


async def weights(api: k8s.ApiClient, namespace: str) -> dict[str, int]:
    return weights_of((await read_policy(api, namespace))["spec"]["placement"])


async def settled(
    karmada_api: k8s.ApiClient,
    members: Mapping[str, k8s.ApiClient],
    namespace: str,
    division: Callable[[dict[str, int]], bool],
    what: str,
) -> dict[str, int]:
    """Wait until the binding's division satisfies ``division`` and every member runs its share,
    ready; the division. Binding and members are read together each time: the scheduler may
    re-divide (a weight write lands) while the members still follow the previous division."""

    async def binding_and_members() -> tuple[dict[str, int], dict[str, int]]:
        return await scheduled(karmada_api, namespace), await running(members, namespace)

    divided, _ = await eventually(
        f"the binding divided with {what} and the members running it, ready",
        binding_and_members,
        lambda found: (
            sum(found[0].values()) == REPLICAS and division(found[0]) and found[0] == found[1]
        ),
        timeout=SETTLE_SECONDS,
    )
    return divided


async def applied_at(api: k8s.ApiClient, namespace: str) -> list[datetime]:
    """When the controller applied weights to the policy, from its Events, oldest first."""
    listed = await k8s.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={READ_POOL},reason=CarbonWeightsApplied"
    )
    return sorted(event.first_timestamp for event in listed.items)


def held(policy: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, str]]:
    """What a write by the controller would change: the weights and the decision annotations."""
    annotations = policy["metadata"].get("annotations") or {}
    ours = {k: v for k, v in annotations.items() if k.startswith("stellar.org/")}
    return weights_of(policy["spec"]["placement"]), ours


# --- the scenarios ------------------------------------------------------------------------------


async def test_a_policy_restricted_to_two_members_gets_weights_for_those_two_only(
    karmada_api: k8s.ApiClient,
    member_apis: dict[str, k8s.ApiClient],
    controller: KarmadaController,
) -> None:
    async with fresh_namespace(karmada_api, prefix="restricted-") as namespace:
        # The greenest member (AWS) is left out by the user's affinity.
        await propagate_read_pool(
            karmada_api, namespace, REPLICAS, read_pool_policy(clusters=(GCP, AZURE))
        )

        written = await eventually(
            "weights written", lambda: weights(karmada_api, namespace), bool, timeout=60
        )
        # Divided by the written weights: nothing in AWS, more in the greener GCP.
        divided = await settled(
            karmada_api,
            member_apis,
            namespace,
            lambda d: AWS not in d and d.get(GCP, 0) > d.get(AZURE, 0),
            "nothing in AWS, most in GCP",
        )
        # Several cycles later the list still names the two members only.
        await asyncio.sleep(3)
        policy = await read_policy(karmada_api, namespace)

    assert set(written) == {GCP, AZURE}
    assert weights_of(policy["spec"]["placement"]) == written
    assert written[GCP] > written[AZURE]
    ranking = policy["metadata"]["annotations"][RANKING_ANNOTATION]
    assert [item.split("=")[0] for item in ranking.split(",")] == [GCP, AZURE]
    assert set(divided) <= {GCP, AZURE}


async def test_a_read_pool_follows_the_grid_across_members_and_holds_still_without_the_controller(
    karmada_api: k8s.ApiClient,
    member_apis: dict[str, k8s.ApiClient],
    carbon_api: CarbonApiThread,
    controller: KarmadaController,
) -> None:
    async with fresh_namespace(karmada_api, prefix="follow-") as namespace:
        # --- placed: most replicas in the greenest member ------------------------------------
        await propagate_read_pool(karmada_api, namespace, REPLICAS, read_pool_policy())
        first = await eventually(
            "weights written", lambda: weights(karmada_api, namespace), bool, timeout=60
        )
        placed = await settled(
            karmada_api,
            member_apis,
            namespace,
            lambda d: d.get(AWS, 0) > REPLICAS // 2,
            "most replicas in AWS",
        )
        policy = await read_policy(karmada_api, namespace)
        annotations = policy["metadata"]["annotations"]
        assert max(first, key=first.__getitem__) == AWS
        assert set(first) == set(REGIONS)
        # The real scheduler divides as the controller's estimate does.
        assert placed == {name: n for name, n in divide(REPLICAS, first).items() if n}
        assert annotations[WEIGHTS_ANNOTATION].startswith(f"{AWS}=100,")
        assert annotations[RANKING_ANNOTATION].split(",")[0] == f"{AWS}=100"
        assert annotations[SOURCE_ANNOTATION] == "http"

        # --- the grid flips: within one dwell the weights change, then the replicas move ----
        async with FleetPool(member_apis, namespace, READ_POOL_SELECTOR) as pool:
            assert sum(pool.ready().values()) == REPLICAS
            set_grid(carbon_api, GREEN_EUROPE)
            flipped = time.monotonic()
            changed = await eventually(
                "new weights",
                lambda: weights(karmada_api, namespace),
                lambda w: w != first,
                timeout=DWELL_SECONDS + SLACK_SECONDS,
            )
            reacted = time.monotonic() - flipped
            moved = await settled(
                karmada_api,
                member_apis,
                namespace,
                lambda d: AWS not in d and d.get(GCP, 0) > REPLICAS // 2,
                "most replicas in GCP, none in AWS",
            )
            await pool_settled(pool, moved)
            settle = time.monotonic() - flipped
            pool.check()
        final = await weights(karmada_api, namespace)
        writes = await applied_at(karmada_api, namespace)

        print(  # what the scenario observed, for whoever runs it with -s
            f"\nkarmada-follow: placed={placed} first={first} changed={changed} final={final}"
            f" moved={moved} lowest_ready={pool.lowest_total} at={pool.lowest_at}"
            f" observations={pool.observations} writes={[w.isoformat() for w in writes]}"
            f" reacted={reacted:.1f}s settled={settle:.1f}s"
        )
        assert max(final, key=final.__getitem__) == GCP
        assert pool.lowest_total is not None
        assert pool.lowest_total >= MIN_READY, (
            f"ready replicas fell to {pool.lowest_total} ({pool.lowest_at})"
        )
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(writes)]
        # Event times have whole seconds.
        assert all(gap >= DWELL_SECONDS - 1 for gap in gaps), gaps
        assert len(writes) >= 2

        # --- the carbon API fails: weights and placement stay -------------------------------
        before = held(await read_policy(karmada_api, namespace))
        assert before[0] == final
        frozen = controller.counter("stellar_carbon_karmada_decisions", verdict="frozen")
        carbon_api.outage = True
        try:
            await eventually(
                "the controller freezing the weights on static data",
                _frozen_reader(controller),
                lambda count: count > frozen + 3,  # several cycles
                timeout=40,
            )
            assert held(await read_policy(karmada_api, namespace)) == before
            assert await scheduled(karmada_api, namespace) == moved
            assert await running(member_apis, namespace) == moved
        finally:
            carbon_api.outage = False
        assert carbon_api.refused > 0

        # --- the user re-applies the policy with a change of their own: both survive --------
        await apply_as_user(
            karmada_api, namespace, read_pool_policy(labels={"team": "stellar-read"}, priority=5)
        )
        await asyncio.sleep(3)  # cycles woken by the change, deciding on it
        reapplied = await read_policy(karmada_api, namespace)
        assert reapplied["metadata"]["labels"]["team"] == "stellar-read"
        assert reapplied["spec"]["priority"] == 5
        assert held(reapplied) == before
        assert owner_of_weights(reapplied) == FIELD_MANAGER
        assert await scheduled(karmada_api, namespace) == moved

        # --- the controller is killed and the grid turns back: nothing changes --------------
        controller.service.kill()
        set_grid(carbon_api, GREEN_WEST)
        await asyncio.sleep(DWELL_SECONDS + 5)
        assert held(await read_policy(karmada_api, namespace)) == before
        assert await scheduled(karmada_api, namespace) == moved
        assert await running(member_apis, namespace) == moved


def _frozen_reader(controller: KarmadaController) -> Callable[[], Awaitable[float]]:
    async def read() -> float:
        return await asyncio.to_thread(
            controller.counter, "stellar_carbon_karmada_decisions", verdict="frozen"
        )

    return read


def owner_of_weights(policy: Mapping[str, Any]) -> str | None:
    """The field manager that applied ``staticWeightList``."""
    for entry in policy["metadata"].get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        for step in ("f:spec", "f:placement", "f:replicaScheduling", "f:weightPreference"):
            fields = fields.get(step) or {}
        if "f:staticWeightList" in fields:
            return str(entry["manager"])
    return None


async def pool_settled(pool: FleetPool, division: Mapping[str, int]) -> None:
    """Wait until the pods the watches see are the division, every one ready."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while {k: v for k, v in pool.ready().items() if v} != dict(division) or pool.pods() != {
        name: division.get(name, 0) for name in pool.watches
    }:
        pool.check()
        assert time.monotonic() < deadline, f"pods {pool.pods()} ready {pool.ready()}"
        await asyncio.sleep(0.2)
