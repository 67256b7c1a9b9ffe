"""Self-managed certificates against a fake Kubernetes API: one Secret shared by replicas,
caBundle injection, renewal in time, and repair of a broken Secret."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from kubernetes_asyncio.client import ApiClient

from shared.cluster.kube import KubeApiError
from shared.core.clock import utcnow
from tests.fakes.kube_certificates import FakeKube, running, webhook_configuration
from webhook.certs import KeyPair, inspect, signed_by, split_bundle
from webhook.rotation import SelfManagedCertificates
from webhook.settings import WebhookSettings
from webhook.tls import server_context

SETTINGS = WebhookSettings(
    secret_name="stellar-carbon-webhook-tls",
    secret_namespace="stellar-carbon",
    webhook_config_name="stellar-carbon-webhook",
    extra_ips=("127.0.0.1",),
    cert_validity_days=30,
    ca_validity_days=365,
    rotation_check_interval=0.05,
)
SECRET_KEY = ("stellar-carbon", "stellar-carbon-webhook-tls")
SERVICE_HOST = "stellar-carbon-webhook.stellar-carbon.svc"


class MovableClock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def fake() -> FakeKube:
    fake = FakeKube()
    fake.configurations["stellar-carbon-webhook"] = webhook_configuration(
        "stellar-carbon-webhook", "pods.stellar.org", "pods-dry-run.stellar.org"
    )
    return fake


@pytest.fixture
async def api(fake: FakeKube) -> AsyncIterator[ApiClient]:
    async with running(fake) as client:
        yield client


def replica(
    api: ApiClient,
    clock: MovableClock,
    settings: WebhookSettings = SETTINGS,
    reloads: list[KeyPair] | None = None,
    reloaded: asyncio.Event | None = None,
) -> tuple[SelfManagedCertificates, ssl.SSLContext]:
    def on_reload(pair: KeyPair) -> None:
        if reloads is not None:
            reloads.append(pair)
        if reloaded is not None:
            reloaded.set()

    context = server_context()
    manager = SelfManagedCertificates(api, settings, context, clock=clock, on_reload=on_reload)
    return manager, context


def stored_ca(fake: FakeKube) -> bytes:
    return base64.b64decode(fake.secrets[SECRET_KEY]["data"]["ca.crt"])


def ca_bundles(fake: FakeKube) -> list[str | None]:
    hooks = fake.configurations["stellar-carbon-webhook"]["webhooks"]
    return [hook["clientConfig"].get("caBundle") for hook in hooks]


async def served_fingerprint(context: ssl.SSLContext, ca_bundle: bytes) -> str:
    """Serve ``context`` and handshake as the API server would (caBundle, service DNS name)."""
    server = TestServer(aiohttp.web.Application())
    await server.start_server(ssl=context)
    client = ssl.create_default_context(cadata=ca_bundle.decode())
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=client, server_hostname=SERVICE_HOST
        )
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        await writer.wait_closed()
    finally:
        await server.close()
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex()


async def test_first_replica_creates_the_secret_and_injects_the_ca(
    fake: FakeKube, api: ApiClient
) -> None:
    manager, context = replica(api, MovableClock())

    stored = await manager.ensure()

    secret = fake.secrets[SECRET_KEY]
    assert secret["type"] == "kubernetes.io/tls"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    wanted = base64.b64encode(stored.ca_bundle).decode()
    assert ca_bundles(fake) == [wanted, wanted]
    info = inspect(stored.serving.cert_pem)
    assert set(SETTINGS.dns_names) <= set(info.dns_names)
    assert info.ip_addresses == ("127.0.0.1",)
    assert await served_fingerprint(context, stored_ca(fake)) == info.fingerprint


async def test_replicas_starting_together_serve_one_pair(fake: FakeKube, api: ApiClient) -> None:
    clock = MovableClock()
    (first, first_ctx), (second, second_ctx) = replica(api, clock), replica(api, clock)

    a, b = await asyncio.gather(first.ensure(), second.ensure())

    assert a.serving == b.serving
    # One won; the other lost the race (409) or, on a slow machine, read the winner's pair first.
    assert fake.calls.count("POST secret stellar-carbon-webhook-tls") in (1, 2)
    ca = stored_ca(fake)
    assert await served_fingerprint(first_ctx, ca) == await served_fingerprint(second_ctx, ca)


async def test_a_second_pass_changes_nothing(fake: FakeKube, api: ApiClient) -> None:
    manager, _ = replica(api, MovableClock())
    first = await manager.ensure()
    calls = len(fake.calls)

    again = await manager.ensure()

    assert again.serving == first.serving
    assert fake.calls[calls:] == [
        "GET secret stellar-carbon-webhook-tls",
        "GET config stellar-carbon-webhook",  # read, found right, not patched
    ]


async def test_a_configuration_re_created_without_the_ca_gets_it_back_at_the_next_check(
    fake: FakeKube, api: ApiClient
) -> None:
    manager, _ = replica(api, MovableClock())
    stored = await manager.ensure()
    fake.configurations["stellar-carbon-webhook"] = webhook_configuration(
        "stellar-carbon-webhook", "pods.stellar.org", "pods-dry-run.stellar.org"
    )
    assert ca_bundles(fake) == [None, None]

    await manager.ensure()

    assert ca_bundles(fake) == [base64.b64encode(stored.ca_bundle).decode()] * 2


async def test_serving_certificate_is_renewed_when_a_third_of_its_life_is_left(
    fake: FakeKube, api: ApiClient
) -> None:
    clock = MovableClock()
    reloads: list[KeyPair] = []
    manager, _ = replica(api, clock)
    other, _ = replica(api, clock, reloads=reloads)
    first = await manager.ensure()
    await other.ensure()

    clock.advance(days=19)  # 11 of 30 days left: more than a third
    assert (await manager.ensure()).serving == first.serving

    clock.advance(days=2)  # 9 days left
    renewed = await manager.ensure()

    assert renewed.serving != first.serving
    assert renewed.ca == first.ca, "a healthy CA is kept, so the caBundle stays"
    assert fake.calls.count("PATCH config stellar-carbon-webhook") == 1
    assert inspect(renewed.serving.cert_pem).not_after > clock.now + timedelta(days=29)
    picked_up = await other.ensure()
    assert picked_up.serving == renewed.serving
    assert reloads == [renewed.serving], "the other replica swapped its live context"


async def test_a_ca_near_expiry_is_replaced_and_the_old_one_stays_trusted(
    fake: FakeKube, api: ApiClient
) -> None:
    clock = MovableClock()
    manager, _ = replica(api, clock)
    first = await manager.ensure()

    clock.advance(days=250)  # 115 of 365 days left
    renewed = await manager.ensure()

    bundle = split_bundle(renewed.ca_bundle)
    assert len(bundle) == 2
    assert bundle[1] == first.ca.cert_pem, "the old CA stays in the bundle until it expires"
    assert signed_by(renewed.serving.cert_pem, bundle[0])
    assert ca_bundles(fake) == [base64.b64encode(renewed.ca_bundle).decode()] * 2


async def test_concurrent_renewals_settle_on_one_pair(fake: FakeKube, api: ApiClient) -> None:
    clock = MovableClock()
    first, _ = replica(api, clock)
    second, _ = replica(api, clock)
    await first.ensure()
    await second.ensure()
    clock.advance(days=25)

    a, b = await asyncio.gather(first.ensure(), second.ensure())

    assert a.serving == b.serving
    # One won; the other lost the race (409) or, on a slow machine, read the winner's pair first.
    assert fake.calls.count("PATCH secret stellar-carbon-webhook-tls") in (1, 2)


async def test_a_secret_with_unusable_data_is_repaired(fake: FakeKube, api: ApiClient) -> None:
    fake.secrets[SECRET_KEY] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_KEY[1], "namespace": SECRET_KEY[0], "resourceVersion": "7"},
        "data": {"tls.crt": base64.b64encode(b"not a certificate").decode(), "ca.key": "%%%"},
    }
    manager, context = replica(api, MovableClock())

    stored = await manager.ensure()

    assert signed_by(stored.serving.cert_pem, stored.ca_bundle)
    assert (
        await served_fingerprint(context, stored_ca(fake))
        == inspect(stored.serving.cert_pem).fingerprint
    )


async def test_new_configured_names_get_a_new_certificate(fake: FakeKube, api: ApiClient) -> None:
    clock = MovableClock()
    manager, _ = replica(api, clock)
    first = await manager.ensure()
    wider = SETTINGS.model_copy(update={"extra_dns_names": ("localhost",)})
    other, _ = replica(api, clock, settings=wider)

    renewed = await other.ensure()

    assert renewed.serving != first.serving
    assert "localhost" in inspect(renewed.serving.cert_pem).dns_names


async def test_a_missing_webhook_configuration_is_not_fatal_and_is_filled_in_later(
    fake: FakeKube, api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    configuration = fake.configurations.pop("stellar-carbon-webhook")
    manager, _ = replica(api, MovableClock())

    with caplog.at_level(logging.WARNING, logger="webhook.cabundle"):
        stored = await manager.ensure()
    assert "not found" in caplog.text

    fake.configurations["stellar-carbon-webhook"] = configuration
    await manager.ensure()
    assert ca_bundles(fake) == [base64.b64encode(stored.ca_bundle).decode()] * 2


async def test_the_background_check_picks_up_a_pair_another_replica_stored(
    fake: FakeKube, api: ApiClient
) -> None:
    clock = MovableClock()
    reloads: list[KeyPair] = []
    reloaded = asyncio.Event()
    watcher, watcher_ctx = replica(api, clock, reloads=reloads, reloaded=reloaded)
    await watcher.ensure()
    watcher.start()
    try:
        other, _ = replica(
            api, clock, settings=SETTINGS.model_copy(update={"extra_dns_names": ("localhost",)})
        )
        renewed = await other.ensure()
        async with asyncio.timeout(5):
            await reloaded.wait()
    finally:
        await watcher.stop()

    assert reloads == [renewed.serving]
    assert (
        await served_fingerprint(watcher_ctx, stored_ca(fake))
        == inspect(renewed.serving.cert_pem).fingerprint
    )


async def test_the_secret_the_chart_created_empty_is_filled_without_touching_its_metadata(
    fake: FakeKube, api: ApiClient
) -> None:
    helm_owned = {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"meta.helm.sh/release-name": "carbon"},
    }
    fake.secrets[SECRET_KEY] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_KEY[1], "namespace": SECRET_KEY[0], "resourceVersion": "7"}
        | helm_owned,
        "type": "Opaque",
    }
    manager, context = replica(api, MovableClock())

    stored = await manager.ensure()

    assert "POST secret stellar-carbon-webhook-tls" not in fake.calls, "needs no create right"
    secret = fake.secrets[SECRET_KEY]
    assert secret["type"] == "Opaque"
    assert {k: secret["metadata"][k] for k in helm_owned} == helm_owned
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    assert (
        await served_fingerprint(context, stored_ca(fake))
        == inspect(stored.serving.cert_pem).fingerprint
    )


def entry(name: str, client_config: dict[str, object]) -> dict[str, object]:
    return {"name": name, "sideEffects": "None", "clientConfig": client_config}


async def test_only_entries_that_call_this_webhook_get_its_ca(
    fake: FakeKube, api: ApiClient
) -> None:
    ours = {"namespace": "stellar-carbon", "name": "stellar-carbon-webhook"}
    fake.configurations["stellar-carbon-webhook"]["webhooks"] = [
        entry("service.ours", {"service": ours}),
        entry("service.theirs", {"service": {**ours, "name": "other"}, "caBundle": "dGhlaXJz"}),
        entry("url.ours", {"url": "https://127.0.0.1:8443/mutate"}),
        entry("url.theirs", {"url": "https://policy.example.org/mutate"}),
    ]
    manager, _ = replica(api, MovableClock())

    stored = await manager.ensure()

    wanted = base64.b64encode(stored.ca_bundle).decode()
    assert ca_bundles(fake) == [wanted, "dGhlaXJz", wanted, None]


async def test_a_removed_or_replaced_ca_bundle_is_restored_by_the_running_webhook(
    fake: FakeKube, api: ApiClient
) -> None:
    # An hour between scheduled checks: only the watch can explain a restoration in time.
    manager, _ = replica(
        api, MovableClock(), settings=SETTINGS.model_copy(update={"rotation_check_interval": 3600})
    )
    stored = await manager.ensure()
    wanted = base64.b64encode(stored.ca_bundle).decode()
    manager.start()
    try:
        for tampered in (None, base64.b64encode(b"garbage").decode()):
            configuration = copy.deepcopy(fake.configurations["stellar-carbon-webhook"])
            for hook in configuration["webhooks"]:
                hook["clientConfig"]["caBundle"] = tampered
            fake.change_configuration("stellar-carbon-webhook", configuration)
            assert ca_bundles(fake) == [tampered, tampered]
            async with asyncio.timeout(5):
                while ca_bundles(fake) != [wanted, wanted]:  # noqa: ASYNC110 (the fake has no event)
                    await asyncio.sleep(0.02)
    finally:
        await manager.stop()

    assert fake.calls.count("WATCH config stellar-carbon-webhook") >= 1


class ForbiddenKube(FakeKube):
    """An API server where the webhook's service account may not read Secrets."""

    async def read_secret(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        body = {"kind": "Status", "code": 403, "message": "secrets is forbidden " + "x" * 500}
        return aiohttp.web.json_response(body, status=403)


async def test_api_errors_are_raised_with_a_short_reason() -> None:
    async with running(ForbiddenKube()) as api:
        manager, _ = replica(api, MovableClock())

        with pytest.raises(KubeApiError, match="HTTP 403") as raised:
            await manager.ensure()

    assert "read Secret stellar-carbon/stellar-carbon-webhook-tls" in str(raised.value)
    assert len(str(raised.value)) < 300
