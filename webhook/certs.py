"""Serving certificates: generate a small CA and a serving pair, and inspect stored ones.

Pure (cryptography only, no I/O). Keys are ECDSA P-256. The API server checks SANs only (the
Common Name is ignored since Kubernetes 1.19), so every name the Service is reached by goes into
the SAN extension, IP addresses as IP SANs.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.errors import CertificateError

RENEW_FRACTION = 1 / 3
"""Renew when less than this share of a certificate's lifetime is left."""
_BACKDATE = timedelta(minutes=5)
"""Start validity a little in the past: clocks across a cluster are never exactly equal."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate (or bundle, leaf/newest first) and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        """SHA-256 over both PEMs: cheap change detection without keeping the key around twice."""
        return hashlib.sha256(self.cert_pem + b"\0" + self.key_pem).hexdigest()


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What matters about one certificate for serving and renewal."""

    subject: str
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    is_ca: bool
    fingerprint: str
    """SHA-256 of the DER certificate, hex."""

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before

    def expired(self, now: datetime) -> bool:
        return now >= self.not_after

    def needs_renewal(self, now: datetime, fraction: float = RENEW_FRACTION) -> bool:
        """Less than ``fraction`` of the lifetime remains (or the certificate is not yet valid)."""
        return now < self.not_before or self.not_after - now < self.lifetime * fraction

    def covers(self, dns_names: Sequence[str], ips: Sequence[str]) -> bool:
        """Every wanted name and address is among the SANs."""
        have_ips = {ipaddress.ip_address(ip) for ip in self.ip_addresses}
        return {n.lower() for n in dns_names} <= set(self.dns_names) and {
            ipaddress.ip_address(ip) for ip in ips
        } <= have_ips


def generate_ca(*, common_name: str, now: datetime, days: int) -> KeyPair:
    """A self-signed CA that may sign serving certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))


def issue_serving(
    ca: KeyPair,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    now: datetime,
    days: int,
) -> KeyPair:
    """A serving certificate for ``dns_names`` and ``ip_addresses``, signed by ``ca``."""
    if not dns_names and not ip_addresses:
        raise CertificateError("a serving certificate needs at least one DNS name or IP address")
    ca_cert = _first_cert(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertificateError("the CA key is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    ips: list[IPAddress] = []
    for raw in ip_addresses:
        ip = ipaddress.ip_address(raw)
        if not ip.is_unspecified:  # 0.0.0.0 is a bind address, never a name a client dials
            ips.append(ip)
    sans: list[x509.GeneralName] = [x509.DNSName(n.lower()) for n in dns_names]
    sans.extend(x509.IPAddress(ip) for ip in ips)
    common_name = dns_names[0] if dns_names else str(ips[0])
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return KeyPair(cert_pem=_cert_pem(cert), key_pem=_key_pem(key))


def inspect(cert_pem: bytes) -> CertificateInfo:
    """Facts about the first certificate in ``cert_pem``; ``CertificateError`` if unreadable."""
    cert = _first_cert(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        dns_names=dns,
        ip_addresses=ips,
        is_ca=is_ca,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
    )


def split_bundle(bundle_pem: bytes) -> list[bytes]:
    """The PEM certificates in a bundle, in order; ``CertificateError`` if there are none."""
    try:
        certs = x509.load_pem_x509_certificates(bundle_pem)
    except ValueError as e:
        raise CertificateError("not a PEM certificate bundle") from e
    return [_cert_pem(cert) for cert in certs]


def key_matches(pair: KeyPair) -> bool:
    """The private key belongs to the (first) certificate."""
    try:
        key = serialization.load_pem_private_key(pair.key_pem, password=None)
    except (ValueError, TypeError):
        return False
    public = _first_cert(pair.cert_pem).public_key()
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return key.public_key().public_bytes(enc, fmt) == public.public_bytes(enc, fmt)


def signed_by(cert_pem: bytes, ca_bundle_pem: bytes) -> bool:
    """The first certificate of ``cert_pem`` was issued by one of the CAs in the bundle."""
    cert = _first_cert(cert_pem)
    for ca_pem in split_bundle(ca_bundle_pem):
        try:
            cert.verify_directly_issued_by(_first_cert(ca_pem))
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _first_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise CertificateError("not a PEM certificate") from e


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
