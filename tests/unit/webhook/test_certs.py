"""Certificate generation and inspection (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core.clock import utcnow
from webhook.certs import KeyPair, generate_ca, inspect, issue_serving, key_matches, signed_by
from webhook.errors import CertificateError


def test_a_generated_ca_is_a_ca_and_its_serving_cert_is_not(ca: KeyPair, serving: KeyPair) -> None:
    assert inspect(ca.cert_pem).is_ca
    assert not inspect(serving.cert_pem).is_ca
    assert signed_by(serving.cert_pem, ca.cert_pem)
    assert key_matches(serving)


def test_sans_hold_every_dns_name_and_ip(ca: KeyPair) -> None:
    pair = issue_serving(
        ca,
        dns_names=["svc", "svc.ns.svc"],
        ip_addresses=["127.0.0.1", "0.0.0.0", "::1"],  # 0.0.0.0 must be dropped
        now=utcnow(),
        days=1,
    )

    info = inspect(pair.cert_pem)
    assert info.dns_names == ("svc", "svc.ns.svc")
    assert info.ip_addresses == ("127.0.0.1", "::1")
    assert info.covers(["svc.ns.svc"], ["::1"])
    assert not info.covers(["other"], [])


def test_renewal_is_due_when_a_third_of_the_lifetime_is_left(ca: KeyPair) -> None:
    now = utcnow()
    info = inspect(issue_serving(ca, dns_names=["svc"], now=now, days=30).cert_pem)

    assert not info.needs_renewal(now + timedelta(days=19))
    assert info.needs_renewal(now + timedelta(days=21))
    assert info.needs_renewal(now - timedelta(hours=1)), "not yet valid counts as unusable"


def test_serving_lifetime_never_outlives_its_ca() -> None:
    now = utcnow()
    short_ca = generate_ca(common_name="short", now=now, days=2)

    pair = issue_serving(short_ca, dns_names=["svc"], now=now, days=365)

    assert inspect(pair.cert_pem).not_after <= inspect(short_ca.cert_pem).not_after


def test_another_cas_certificate_is_not_signed_by_this_one(serving: KeyPair) -> None:
    other = generate_ca(common_name="other", now=utcnow(), days=1)

    assert not signed_by(serving.cert_pem, other.cert_pem)


def test_a_mismatched_key_is_detected(ca: KeyPair, serving: KeyPair) -> None:
    assert not key_matches(KeyPair(serving.cert_pem, ca.key_pem))


def test_key_material_is_kept_out_of_reprs(serving: KeyPair) -> None:
    assert "PRIVATE KEY" not in repr(serving)


def test_garbage_is_a_certificate_error() -> None:
    with pytest.raises(CertificateError):
        inspect(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
