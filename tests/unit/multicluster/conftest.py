"""A fake Karmada API server holding three member clusters and a 12-replica binding, and a
kubernetes-asyncio client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client import ApiClient, Configuration

from tests.fakes.karmada_api import FakeKarmadaApi
from tests.unit.multicluster.builders import CLUSTERS, binding


@pytest.fixture
async def fake() -> AsyncIterator[FakeKarmadaApi]:
    api = FakeKarmadaApi()
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    api.base_url = f"http://127.0.0.1:{server.port}"
    for each in CLUSTERS:
        await api.put("clusters", each)
    await api.put("resourcebindings", binding("read-pool-deployment", 12))
    try:
        yield api
    finally:
        await api.shutdown()
        await server.close()


@pytest.fixture
async def client(fake: FakeKarmadaApi) -> AsyncIterator[ApiClient]:
    async with ApiClient(Configuration(host=fake.base_url)) as api_client:
        yield api_client
