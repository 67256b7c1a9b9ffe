"""A fake Kubernetes API with nodes, a kubernetes-asyncio client on it, and an inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client import ApiClient, Configuration

from shared.cluster.kube import KubeInventory, WatchSettings
from tests.fakes.kube_api import FakeKubeApi

FAST = WatchSettings(
    watch_timeout_s=30, backoff_initial_s=0.01, backoff_max_s=0.05, request_timeout_s=5
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeApi]:
    api = FakeKubeApi()
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    api.base_url = f"http://127.0.0.1:{server.port}"
    try:
        yield api
    finally:
        await api.shutdown()
        await server.close()


@pytest.fixture
async def client(fake: FakeKubeApi) -> AsyncIterator[ApiClient]:
    async with ApiClient(Configuration(host=fake.base_url)) as api_client:
        yield api_client


@pytest.fixture
async def inventory(client: ApiClient) -> AsyncIterator[KubeInventory]:
    """Started by the test once its nodes are in the fake; stopped at the end."""
    inventory = KubeInventory(client, settings=FAST)
    try:
        yield inventory
    finally:
        await inventory.stop()
