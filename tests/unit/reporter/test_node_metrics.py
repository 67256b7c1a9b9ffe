"""Node CPU usage from metrics.k8s.io, read from a fake API server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client import ApiClient, Configuration

from reporter.usage import NodeMetricsPoller, usage_from_node_metrics

NODE_METRICS = {
    "kind": "NodeMetricsList",
    "apiVersion": "metrics.k8s.io/v1beta1",
    "metadata": {},
    "items": [
        {
            "metadata": {"name": "node-a"},
            "timestamp": "2026-11-26T11:59:30Z",
            "window": "20.027s",
            "usage": {"cpu": "2034567890n", "memory": "4012Mi"},
        },
        {"metadata": {"name": "node-b"}, "usage": {"cpu": "250m", "memory": "1Gi"}},
        {"metadata": {"name": "node-c"}, "usage": {"cpu": "lots"}},
        {"metadata": {}, "usage": {"cpu": "1"}},
    ],
}


class FakeMetricsServer:
    def __init__(self) -> None:
        self.status = 200
        self.requests = 0
        app = web.Application()
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/nodes", self.nodes)
        self.server = TestServer(app, host="127.0.0.1")

    async def nodes(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.status != 200:
            return web.json_response({"kind": "Status", "code": self.status}, status=self.status)
        return web.json_response(NODE_METRICS)


@pytest.fixture
async def metrics_server() -> AsyncIterator[FakeMetricsServer]:
    fake = FakeMetricsServer()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


@pytest.fixture
async def api(metrics_server: FakeMetricsServer) -> AsyncIterator[ApiClient]:
    configuration = Configuration(host=str(metrics_server.server.make_url("")).rstrip("/"))
    async with ApiClient(configuration) as client:
        yield client


def test_usage_is_read_in_millicores_and_unreadable_items_are_skipped() -> None:
    assert usage_from_node_metrics(NODE_METRICS) == {"node-a": 2035, "node-b": 250}
    assert usage_from_node_metrics({"items": "nope"}) == {}


async def test_the_poller_reads_node_usage_from_the_api(
    api: ApiClient, metrics_server: FakeMetricsServer
) -> None:
    poller = NodeMetricsPoller(api, interval=60)
    assert poller.usage_millis == {}
    await poller.poll_once()
    assert poller.usage_millis == {"node-a": 2035, "node-b": 250}
    assert metrics_server.requests == 1
    assert poller.last_error is None


async def test_a_failing_api_keeps_the_last_readings_until_they_expire(
    api: ApiClient, metrics_server: FakeMetricsServer
) -> None:
    now = [1000.0]
    poller = NodeMetricsPoller(api, interval=60, monotonic=lambda: now[0])
    await poller.poll_once()
    metrics_server.status = 503
    await poller.poll_once()
    assert poller.last_error is not None
    assert poller.usage_millis == {"node-a": 2035, "node-b": 250}
    now[0] += 181  # three intervals without a successful read
    assert poller.usage_millis == {}


async def test_an_unchanged_reading_keeps_the_same_mapping(api: ApiClient) -> None:
    poller = NodeMetricsPoller(api, interval=60)
    await poller.poll_once()
    first: Any = poller.usage_millis
    await poller.poll_once()
    assert poller.usage_millis is first
