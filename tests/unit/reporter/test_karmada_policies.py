"""``/api/v1/sustainability/karmada``: the reporter serves the policies the Karmada controller's own
health site reports, keeps the last ones while the controller is down (marked stale), and never
fails a request because of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client import ApiClient, Configuration

from multicluster.app import create_app as create_controller_app
from multicluster.decide import ClusterCarbon, Rules, decide
from multicluster.karmada import KarmadaWatches
from multicluster.lease import LeaderLease
from multicluster.metrics import KarmadaMetrics
from multicluster.placement import PolicyKind
from multicluster.policies import PolicyRef
from multicluster.report import PolicyView
from multicluster.settings import KarmadaMode
from reporter.karmada import KarmadaPoller
from tests.unit.reporter.cluster import NOW
from tests.unit.reporter.conftest import ClientFactory
from tests.unit.reporter.contract import call
from tests.unit.tiers.builders import Clock

INTERVAL = 0.05
WAIT = 5.0
API = "/api/v1/sustainability/karmada"


def weighed(name: str) -> PolicyView:
    decision = decide(
        eligible=("member-be", "member-us"),
        carbon={"member-be": ClusterCarbon(120.0, True), "member-us": ClusterCarbon(400.0, True)},
        current={},
        workloads=[12],
        last_change=None,
        now=NOW,
        rules=Rules(max_moved_share=1.0),
    )
    return PolicyView(
        PolicyRef(PolicyKind.PROPAGATION, "stellar", name),
        decision,
        {"member-be": 120.0, "member-us": 400.0},
        decided_at=NOW,
        source="electricitymaps",
        regions={"member-be": "europe-west1", "member-us": "us-east-1"},
    )


class Controller:
    """The controller's real health site on a loopback port, showing what a cycle decided."""

    def __init__(self, api: ApiClient) -> None:
        self.metrics = KarmadaMetrics(KarmadaMode.APPLY)
        app = create_controller_app(
            watches=KarmadaWatches(api),
            lease=LeaderLease(
                api, name="l", namespace="karmada-system", duration=15, clock=Clock()
            ),
            snapshot_source=lambda: pytest.fail("the policies do not read carbon data"),
            metrics=self.metrics,
        )
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    # Never contacted: the health site only reads the API client's objects for /readyz.
    async with ApiClient(Configuration(host="http://127.0.0.1:9")) as api:
        running = Controller(api)
        await running.server.start_server()
        try:
            yield running
        finally:
            await running.server.close()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        # The poller's state is read, not pushed: poll it briefly.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(INTERVAL / 5)


async def test_the_reporter_serves_the_controllers_policies_and_keeps_them_when_it_goes_down(
    controller: Controller, reporter_client: ClientFactory
) -> None:
    controller.metrics.show([weighed("read-pool")])
    clock = Clock(NOW)
    poller = KarmadaPoller(controller.url + "/", interval=INTERVAL, clock=clock)
    client = await reporter_client(karmada=poller)

    await until(lambda: poller.last is not None)
    status, body = await call(client, API)
    assert status == 200
    assert (body["mode"], body["leader"], body["stale"]) == ("apply", False, False)
    assert body["fetchedAt"] == "2026-11-26T12:00:00Z"
    (policy,) = body["policies"]
    assert (policy["kind"], policy["namespace"], policy["name"]) == (
        "PropagationPolicy",
        "stellar",
        "read-pool",
    )
    clusters = {each["name"]: each for each in policy["clusters"]}
    assert clusters["member-be"]["region"] == "europe-west1"
    assert clusters["member-be"]["weight"] == 100
    assert clusters["member-us"]["regionIntensity"] == 400.0
    saving = policy["estimatedIntensity"]["relativeSaving"]
    assert saving > 0.1

    # The next cycle's views reach the reporter with the next poll.
    controller.metrics.show([weighed("read-pool"), weighed("archive")])
    await until(lambda: poller.last is not None and len(poller.last.document["policies"]) == 2)

    await controller.server.close()
    await until(lambda: poller.last_error is not None)
    status, kept = await call(client, API)
    assert status == 200
    assert [p["name"] for p in kept["policies"]] == ["read-pool", "archive"]
    assert kept["stale"] is False

    clock.advance(timedelta(seconds=3 * INTERVAL + 1))
    status, aged = await call(client, API)
    assert (status, aged["stale"]) == (200, True)
    assert (await client.get("/api/v1/sustainability/health")).status == 200


async def test_before_the_controller_first_answers_the_path_is_unavailable(
    reporter_client: ClientFactory,
) -> None:
    # A port nothing listens on: bound, then released.
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    await server.close()
    poller = KarmadaPoller(url, interval=INTERVAL, clock=Clock(NOW))
    client = await reporter_client(karmada=poller)

    await until(lambda: poller.last_error is not None)
    status, body = await call(client, API)
    assert status == 503
    error = body["error"]
    assert error["code"] == "karmada_unavailable"
    assert "has not answered yet" in error["message"]


async def test_a_server_that_is_not_the_controller_is_not_taken_for_it(
    reporter_client: ClientFactory,
) -> None:
    async def wrong(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    other = web.Application()
    other.router.add_get("/api/v1/policies", wrong)
    server = TestServer(other, host="127.0.0.1")
    await server.start_server()
    try:
        poller = KarmadaPoller(f"http://127.0.0.1:{server.port}", interval=INTERVAL, clock=Clock())
        client = await reporter_client(karmada=poller)
        await until(lambda: poller.last_error is not None)
        assert "policies list" in (poller.last_error or "")
        assert (await call(client, API))[0] == 503
    finally:
        await server.close()


async def test_the_leaders_policies_win_over_the_standbys_behind_one_service(
    reporter_client: ClientFactory,
) -> None:
    """Two replicas behind a Service: only the leader decides, the standby shows nothing."""
    answers = {"count": 0}
    leader = {"mode": "apply", "leader": True, "policies": [{"name": "read-pool"}]}
    standby = {"mode": "apply", "leader": False, "policies": []}

    async def service(request: web.Request) -> web.Response:
        answers["count"] += 1
        # The leader answers the third request only; the standby every other one.
        return web.json_response(leader if answers["count"] == 3 else standby)

    app = web.Application()
    app.router.add_get("/api/v1/policies", service)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        poller = KarmadaPoller(f"http://127.0.0.1:{server.port}", interval=INTERVAL, clock=Clock())
        client = await reporter_client(karmada=poller)
        await until(lambda: answers["count"] >= 10)
        response = await client.get(API)
        body = await response.json()
        assert (body["leader"], body["policies"]) == (True, [{"name": "read-pool"}])
    finally:
        await server.close()


async def test_without_a_controller_url_the_path_says_it_is_not_configured(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()

    status, body = await call(client, API)
    assert (status, body["error"]["code"]) == (404, "karmada_not_configured")
