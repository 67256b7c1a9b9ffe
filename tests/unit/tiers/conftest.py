"""A fake Kubernetes API with nodes, a kubernetes-asyncio client on it, and an inventory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from shared.cluster.kube import KubeInventory
from tests.fakes.kube_api import FAST, FakeKubeApi, serving


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeApi]:
    async with serving() as api:
        yield api


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
