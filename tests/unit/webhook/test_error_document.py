"""Every error the served webhook sends is the documented JSON document, on both of its sites.

``serve`` runs on loopback with the demo inventory and certificate files; raw requests go over
real TLS to the admission port and over plain HTTP to the health port, so what aiohttp's HTTP
parser rejects before any route (and what the routes reject) is seen exactly as a client sees it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from shared.settings import CarbonSettings
from webhook.__main__ import serve
from webhook.certs import KeyPair
from webhook.settings import InventorySource, WebhookSettings

CLOSE = b"Connection: close\r\n"

ADMISSION_PORT_CASES = {
    "over-long request line": (
        b"POST /mutate?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
    ),
    "over-long header": (
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
        400,
    ),
    "malformed header": (b"POST /mutate HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", 400),
    "invalid method": (b"G@T /mutate HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "unknown HTTP version": (b"POST /mutate HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    "broken chunking": (
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    "chunked and a length": (
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "gzip that is not gzip": (
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n"
        + CLOSE
        + b"\r\n0123456789",
        400,
    ),
    "unknown path": (b"POST /validate HTTP/1.1\r\nHost: x\r\n" + CLOSE + b"\r\n", 404),
    "wrong method": (b"GET /mutate HTTP/1.1\r\nHost: x\r\n" + CLOSE + b"\r\n", 405),
    "body over the limit": (
        b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n"
        + CLOSE
        + b"\r\n"
        + b"a" * 1048577,
        413,
    ),
}

HEALTH_PORT_CASES = {
    "over-long request line": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "malformed header": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", 400),
    "unknown path": (b"GET /status HTTP/1.1\r\nHost: x\r\n" + CLOSE + b"\r\n", 404),
    "wrong method": (b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n" + CLOSE + b"\r\n", 405),
}


@pytest.fixture
async def webhook(
    tmp_path: Path, serving: KeyPair, unused_tcp_port_factory: Callable[[], int]
) -> AsyncIterator[WebhookSettings]:
    """The webhook served as ``python -m webhook`` serves it, with a 1 MiB body limit."""
    (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
    (tmp_path / "tls.key").write_bytes(serving.key_pem)
    settings = WebhookSettings(
        port=unused_tcp_port_factory(),
        health_port=unused_tcp_port_factory(),
        bind_address="127.0.0.1",
        cert_dir=str(tmp_path),
        inventory=InventorySource.DEMO,
        max_body_bytes=1024 * 1024,
        shutdown_timeout=1.0,
    )
    stopping = asyncio.Event()
    served = asyncio.create_task(
        serve(settings, CarbonSettings(providers=("mock", "static")), stopping=stopping)
    )
    try:
        async with asyncio.timeout(30):
            while not await _accepts(settings.port):
                assert not served.done(), "serve() ended before the HTTPS site opened"
                await asyncio.sleep(0.05)
        yield settings
    finally:
        stopping.set()
        await asyncio.wait_for(served, 10)


async def _accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def exchange(
    port: int, request: bytes, tls: ssl.SSLContext | None = None
) -> tuple[int, str, dict[str, Any]]:
    """Send raw bytes, read the answer to its end: status, Content-Type and the JSON body."""
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1" if tls else None
        )
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers.get("Content-Type", ""), json.loads(body)


def assert_error_document(body: dict[str, Any]) -> None:
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert "\n" not in message
    assert len(message) < 200


@pytest.mark.parametrize("case", sorted(ADMISSION_PORT_CASES))
async def test_the_admission_port_answers_every_bad_request_with_the_json_error(
    webhook: WebhookSettings, client_ssl: ssl.SSLContext, case: str
) -> None:
    request, expected = ADMISSION_PORT_CASES[case]
    status, content_type, body = await exchange(webhook.port, request, client_ssl)
    assert status == expected
    assert content_type.startswith("application/json")
    assert_error_document(body)


@pytest.mark.parametrize("case", sorted(HEALTH_PORT_CASES))
async def test_the_health_port_answers_every_bad_request_with_the_json_error(
    webhook: WebhookSettings, case: str
) -> None:
    request, expected = HEALTH_PORT_CASES[case]
    status, content_type, body = await exchange(webhook.health_port, request)
    assert status == expected
    assert content_type.startswith("application/json")
    assert_error_document(body)


async def test_a_request_the_parser_rejects_is_named_as_not_valid_http(
    webhook: WebhookSettings, client_ssl: ssl.SSLContext
) -> None:
    request, _ = ADMISSION_PORT_CASES["broken chunking"]
    _, _, body = await exchange(webhook.port, request, client_ssl)
    assert body["error"]["code"] == "bad_request"
    assert body["error"]["message"].startswith("the request is not valid HTTP: ")


async def test_a_body_over_the_limit_is_answered_with_the_limit(
    webhook: WebhookSettings, client_ssl: ssl.SSLContext
) -> None:
    request, _ = ADMISSION_PORT_CASES["body over the limit"]
    _, _, body = await exchange(webhook.port, request, client_ssl)
    assert body["error"] == {
        "code": "payload_too_large",
        "message": "the request body is larger than 1048576 bytes",
    }
