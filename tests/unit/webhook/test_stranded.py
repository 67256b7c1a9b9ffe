"""Restricted pods left unschedulable: noticed from the pod watch of the fake Kubernetes API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client import ApiClient, Configuration

from shared.cluster.kube import KubeWorkloads, WatchSettings
from shared.cluster.workloads import RestrictedPod
from tests.fakes.kube_api import WAIT, FakeKubeApi, read_replica
from webhook.metrics import WebhookMetrics
from webhook.stranded import StrandedPods, check_interval, stranded

FAST = WatchSettings(
    watch_timeout_s=30, backoff_initial_s=0.01, backoff_max_s=0.05, request_timeout_s=5
)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)
GAUGE = "stellar_carbon_webhook_restricted_pods_unschedulable"
COUNTER = "stellar_carbon_webhook_restricted_pods_stranded_total"


def restricted(
    name: str,
    *,
    since: datetime | None = None,
    node_name: str | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    manifest = read_replica(name, node_name=node_name)
    manifest["metadata"]["uid"] = uid or f"uid-{name}"
    manifest["metadata"]["annotations"] = {"stellar.org/carbon-required-regions": "eu-north-1"}
    if since is not None:
        manifest["status"]["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/6 nodes are available",
                "lastTransitionTime": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ]
    return manifest


@pytest.fixture
async def watched() -> AsyncIterator[tuple[FakeKubeApi, KubeWorkloads]]:
    api = FakeKubeApi()
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    api.base_url = f"http://127.0.0.1:{server.port}"
    try:
        async with ApiClient(Configuration(host=api.base_url)) as client:
            workloads = KubeWorkloads(client, settings=FAST)
            await workloads.start()
            try:
                assert await workloads.wait_synced(WAIT)
                yield api, workloads
            finally:
                await workloads.stop()
    finally:
        await api.shutdown()
        await server.close()


async def until_restricted(workloads: KubeWorkloads, count: int) -> None:
    async with asyncio.timeout(WAIT):
        while len(workloads.state.restricted) != count:  # noqa: ASYNC110 (a snapshot, polled)
            await asyncio.sleep(0.01)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def test_a_restricted_pod_unschedulable_past_the_grace_is_counted_once_and_logged(
    watched: tuple[FakeKubeApi, KubeWorkloads], caplog: pytest.LogCaptureFixture
) -> None:
    fake, workloads = watched
    metrics, clock = WebhookMetrics(), Clock()
    checker = StrandedPods(
        lambda: workloads.state,
        grace=GRACE,
        clock=clock,
        gauge=metrics.restricted_unschedulable,
        counter=metrics.restricted_stranded,
    )
    await fake.put("pods", restricted("read-0", since=NOW - timedelta(seconds=30)))
    await fake.put("pods", restricted("read-1"))  # not tried by the scheduler yet
    await until_restricted(workloads, 2)

    assert checker.check() == []
    assert metrics.value(GAUGE) == 0

    clock.now = NOW + timedelta(seconds=31)
    with caplog.at_level(logging.WARNING, logger="webhook.stranded"):
        assert [p.name for p in checker.check()] == ["read-0"]
        checker.check()
    assert metrics.value(GAUGE) == 1
    assert metrics.value(COUNTER) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "pod stellar/read-0 restricted to regions eu-north-1 has been unschedulable for over 60s"
    ]

    await fake.put("pods", restricted("read-0", node_name="node-a"))
    async with asyncio.timeout(WAIT):
        while ("stellar", "read-0") in workloads.state.restricted:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert checker.check() == []
    assert metrics.value(GAUGE) == 0
    assert metrics.value(COUNTER) == 1


async def test_a_recreated_pod_of_the_same_name_counts_again(
    watched: tuple[FakeKubeApi, KubeWorkloads],
) -> None:
    fake, workloads = watched
    metrics = WebhookMetrics()
    checker = StrandedPods(
        lambda: workloads.state,
        grace=GRACE,
        clock=lambda: NOW,
        gauge=metrics.restricted_unschedulable,
        counter=metrics.restricted_stranded,
    )
    await fake.put("pods", restricted("read-0", since=NOW - timedelta(minutes=5)))
    await until_restricted(workloads, 1)
    checker.check()
    await fake.delete("pods", "read-0", "stellar")
    await until_restricted(workloads, 0)
    checker.check()
    await fake.put("pods", restricted("read-0", since=NOW - timedelta(minutes=2), uid="uid-2"))
    await until_restricted(workloads, 1)
    checker.check()

    assert metrics.value(GAUGE) == 1
    assert metrics.value(COUNTER) == 2


def test_a_condition_without_a_time_counts_from_when_it_was_first_seen() -> None:
    pod = RestrictedPod("stellar", "read-0", "uid", ("eu-north-1",), unschedulable=True)

    def found(now: datetime) -> list[RestrictedPod]:
        return stranded([pod], now=now, grace=GRACE, first_seen=lambda _: NOW)

    assert found(NOW + timedelta(seconds=60)) == []
    assert found(NOW + timedelta(seconds=61)) == [pod]


def test_a_pod_not_yet_unschedulable_is_never_stranded() -> None:
    pod = RestrictedPod("stellar", "read-0", "uid", ("eu-north-1",))

    assert stranded([pod], now=NOW + timedelta(days=1), grace=GRACE, first_seen=lambda _: NOW) == []


def test_checks_run_often_enough_for_the_grace_but_not_in_a_busy_loop() -> None:
    assert check_interval(timedelta(seconds=60)) == 15.0
    assert check_interval(timedelta(seconds=8)) == 2.0
    assert check_interval(timedelta(0)) == 0.5
