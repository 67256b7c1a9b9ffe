"""Synchronous probes of the local services: plain HTTP on loopback, Prometheus text, and the
verified TLS handshake the API server does before it calls a webhook."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a plain GET on loopback (never through a proxy); HTTP errors included."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as e:
        return e.code, bytes(e.read())


def http_ok(url: str) -> bytes:
    """The body of a GET that must answer 200."""
    status, body = http_get(url)
    if status != 200:
        raise AssertionError(f"GET {url} -> HTTP {status}: {body[:500]!r}")
    return body


def http_json(url: str) -> Any:
    """The JSON body of a GET that must answer 200."""
    return json.loads(http_ok(url))


def metric_samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``prometheus_samples`` of a ``/metrics`` endpoint that must answer 200."""
    return prometheus_samples(http_ok(url).decode())


def prometheus_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text as ``{(sample name, frozenset(labels)): value}``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def tls_handshake_verified(port: int, ca_pem: bytes, server_name: str = "127.0.0.1") -> bool:
    """A TLS handshake with 127.0.0.1:``port`` succeeds, the certificate verified against
    ``ca_pem`` for ``server_name``, exactly as the API server checks it."""
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        return True
