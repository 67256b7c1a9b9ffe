"""Fixtures for webhook tests: one CA and serving pair per session (key generation is not free),
SSL contexts for both ends, and a running HTTPS admission server plus its health app."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.demo import StaticInventory
from shared.core.clock import fixed, utcnow
from tests.unit.webhook.builders import NOW, THREE_REGIONS, cluster, snapshot
from webhook.app import create_app, create_health_app
from webhook.certs import KeyPair, generate_ca, issue_serving
from webhook.metrics import WebhookMetrics
from webhook.settings import WebhookSettings
from webhook.tls import load_pair, server_context

SETTINGS = WebhookSettings()


@pytest.fixture(scope="session")
def ca() -> KeyPair:
    return generate_ca(common_name="stellar-carbon-test-ca", now=utcnow(), days=30)


@pytest.fixture(scope="session")
def serving(ca: KeyPair) -> KeyPair:
    return issue_serving(
        ca, dns_names=SETTINGS.dns_names, ip_addresses=("127.0.0.1",), now=utcnow(), days=7
    )


@pytest.fixture
def client_ssl(ca: KeyPair) -> ssl.SSLContext:
    """What the API server does: trust exactly the caBundle, check the host name."""
    return ssl.create_default_context(cadata=ca.cert_pem.decode())


@pytest.fixture
def server_ssl(serving: KeyPair) -> ssl.SSLContext:
    context = server_context()
    load_pair(context, serving)
    return context


@dataclass
class Carbon:
    """A swappable snapshot source, standing in for the background refresher."""

    current: CarbonSnapshot = field(default_factory=lambda: snapshot(THREE_REGIONS))
    failure: Exception | None = None

    def __call__(self) -> CarbonSnapshot:
        if self.failure is not None:
            raise self.failure
        return self.current


@dataclass
class Webhook:
    url: str
    health_url: str
    carbon: Carbon
    metrics: WebhookMetrics
    session: aiohttp.ClientSession


@pytest.fixture
async def webhook(server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext) -> AsyncIterator[Webhook]:
    carbon = Carbon()
    inventory = StaticInventory(cluster().values())
    metrics = WebhookMetrics()
    clock = fixed(NOW)
    app = create_app(
        SETTINGS, snapshot_source=carbon, inventory=inventory, clock=clock, metrics=metrics
    )
    health = create_health_app(
        snapshot_source=carbon, inventory=inventory, clock=clock, metrics=metrics
    )
    server = TestServer(app)
    health_server = TestServer(health)
    await server.start_server(ssl=server_ssl)
    await health_server.start_server()
    connector = aiohttp.TCPConnector(ssl=client_ssl)
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            yield Webhook(
                url=str(server.make_url("/mutate")),
                health_url=str(health_server.make_url("")),
                carbon=carbon,
                metrics=metrics,
                session=session,
            )
        finally:
            await server.close()
            await health_server.close()
