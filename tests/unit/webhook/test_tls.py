"""Serving over real TLS: SANs as a verifying client sees them, TLS versions, hot reload."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from shared.core.clock import utcnow
from tests.unit.webhook.builders import read_replica_pod, review
from tests.unit.webhook.conftest import SETTINGS, Webhook
from webhook.certs import KeyPair, generate_ca, inspect, issue_serving
from webhook.errors import CertificateError
from webhook.tls import CertificateFiles, load_pair, server_context


async def peer_fingerprint(
    port: int, client: ssl.SSLContext, server_hostname: str | None = None
) -> str:
    """Handshake like the API server (verify chain and name) and return the served cert's hash."""
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client, server_hostname=server_hostname or "127.0.0.1"
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return hashlib.sha256(der).hexdigest()
    finally:
        writer.close()
        await writer.wait_closed()


def port_of(webhook: Webhook) -> int:
    return int(webhook.url.split(":")[2].split("/")[0])


@pytest.mark.parametrize("name", SETTINGS.dns_names)
async def test_every_service_name_verifies(
    webhook: Webhook, client_ssl: ssl.SSLContext, serving: KeyPair, name: str
) -> None:
    fingerprint = await peer_fingerprint(port_of(webhook), client_ssl, server_hostname=name)

    assert fingerprint == inspect(serving.cert_pem).fingerprint


async def test_a_name_not_in_the_sans_is_refused(
    webhook: Webhook, client_ssl: ssl.SSLContext
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await peer_fingerprint(port_of(webhook), client_ssl, server_hostname="evil.example.com")


async def test_a_client_that_does_not_trust_the_ca_is_refused(webhook: Webhook) -> None:
    other_ca = generate_ca(common_name="someone-else", now=utcnow(), days=1)
    stranger = ssl.create_default_context(cadata=other_ca.cert_pem.decode())

    with pytest.raises(ssl.SSLCertVerificationError):
        await peer_fingerprint(port_of(webhook), stranger)


async def test_the_ip_san_serves_https_requests(webhook: Webhook) -> None:
    async with webhook.session.post(webhook.url, json=review(read_replica_pod())) as response:
        assert response.status == 200


async def test_tls_1_2_clients_are_accepted_by_default(
    webhook: Webhook, client_ssl: ssl.SSLContext
) -> None:
    client_ssl.maximum_version = ssl.TLSVersion.TLSv1_2

    assert await peer_fingerprint(port_of(webhook), client_ssl)


async def test_minimum_version_1_3_refuses_tls_1_2_clients(
    serving: KeyPair, client_ssl: ssl.SSLContext
) -> None:
    context = server_context("1.3")
    load_pair(context, serving)
    server = TestServer(aiohttp.web.Application())
    await server.start_server(ssl=context)
    client_ssl.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        # The server aborts the handshake; the client sees an SSL alert or a reset.
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            await peer_fingerprint(server.port or 0, client_ssl)
    finally:
        await server.close()


def test_a_key_that_does_not_match_is_refused_before_touching_the_context(
    ca: KeyPair, serving: KeyPair
) -> None:
    other = issue_serving(ca, dns_names=["x.example"], now=utcnow(), days=1)

    with pytest.raises(CertificateError, match="usable pair"):
        load_pair(server_context(), KeyPair(serving.cert_pem, other.key_pem))


async def pong(request: aiohttp.web.Request) -> aiohttp.web.Response:
    return aiohttp.web.Response(text="pong")


class MountedSecret:
    """A directory laid out like a kubelet-mounted Secret: files are symlinks into ``..data``,
    which is swapped atomically to publish a new version."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0

    def publish(self, pair: KeyPair) -> None:
        self.version += 1
        target = self.root / f"..v{self.version}"
        target.mkdir()
        (target / "tls.crt").write_bytes(pair.cert_pem)
        (target / "tls.key").write_bytes(pair.key_pem)
        staging = self.root / "..data_tmp"
        staging.symlink_to(target.name)
        os.replace(staging, self.root / "..data")
        for name in ("tls.crt", "tls.key"):
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")


async def test_rotated_files_are_served_with_no_failed_request_during_the_swap(
    tmp_path: Path, ca: KeyPair, serving: KeyPair, client_ssl: ssl.SSLContext
) -> None:
    secret = MountedSecret(tmp_path)
    secret.publish(serving)
    context = server_context()
    reloaded: list[str] = []
    files = CertificateFiles(
        context,
        tmp_path,
        interval=0.02,
        on_reload=lambda pair: reloaded.append(inspect(pair.cert_pem).fingerprint),
    )
    files.load()
    files.start()
    app = aiohttp.web.Application()
    app.router.add_get("/ping", pong)
    server = TestServer(app)
    await server.start_server(ssl=context)
    renewed = issue_serving(
        ca, dns_names=SETTINGS.dns_names, ip_addresses=("127.0.0.1",), now=utcnow(), days=7
    )
    old, new = inspect(serving.cert_pem).fingerprint, inspect(renewed.cert_pem).fingerprint
    statuses: list[int] = []
    seen: set[str] = set()
    # A new connection per request, so every request is a fresh handshake against the context.
    connector = aiohttp.TCPConnector(ssl=client_ssl, force_close=True)
    try:
        async with aiohttp.ClientSession(connector=connector) as session, asyncio.timeout(20):
            after_reload = 0
            for i in range(400):
                if i == 10:
                    secret.publish(renewed)
                async with session.get(server.make_url("/ping")) as response:
                    statuses.append(response.status)
                    await response.read()
                seen.add(await peer_fingerprint(server.port or 0, client_ssl))
                if reloaded:
                    after_reload += 1
                    if after_reload >= 10:
                        break
                await asyncio.sleep(0.005)
    finally:
        await files.stop()
        await server.close()

    assert reloaded == [new]
    assert set(statuses) == {200}
    assert seen == {old, new}
    assert files.reloads == 1


async def test_a_half_written_pair_keeps_the_old_certificate_until_the_pair_matches(
    tmp_path: Path, ca: KeyPair, serving: KeyPair, client_ssl: ssl.SSLContext
) -> None:
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    context = server_context()
    files = CertificateFiles(context, tmp_path, interval=60)
    files.load()
    server = TestServer(aiohttp.web.Application())
    await server.start_server(ssl=context)
    renewed = issue_serving(
        ca, dns_names=SETTINGS.dns_names, ip_addresses=("127.0.0.1",), now=utcnow(), days=7
    )
    try:
        (tmp_path / "tls.crt").write_bytes(renewed.cert_pem)  # the key is not there yet
        assert files.check() is False
        assert (
            await peer_fingerprint(server.port or 0, client_ssl)
            == inspect(serving.cert_pem).fingerprint
        )

        (tmp_path / "tls.key").write_bytes(renewed.key_pem)
        assert files.check() is True
        assert (
            await peer_fingerprint(server.port or 0, client_ssl)
            == inspect(renewed.cert_pem).fingerprint
        )
        assert files.check() is False, "unchanged files are not reloaded again"
    finally:
        await server.close()


def test_missing_files_fail_the_first_load_with_the_path(tmp_path: Path) -> None:
    files = CertificateFiles(server_context(), tmp_path, interval=1)

    with pytest.raises(CertificateError, match=r"tls\.crt"):
        files.load()
