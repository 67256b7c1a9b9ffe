"""Self-managed serving certificates: one Secret for all replicas, the CA injected, renewed in time.

The Secret is the source of truth. The Helm chart creates it empty, so the webhook needs only to
read and patch it by name; the first replica finds it empty and fills it (a CA and a serving
pair), and a replica that loses that race (409 on the version it read) reads the winner's pair, so
every replica serves the same certificate. Outside the chart the webhook creates the Secret itself
when it is missing. The CA goes into ``caBundle`` of our entries in the named
MutatingWebhookConfiguration (``webhook.cabundle``), which is watched: a bundle someone removes or
changes is put back at once. A background check renews the serving certificate when less than a
third of its lifetime is left (and the CA likewise, keeping the old CA in the bundle until it
expires so certificates it signed stay trusted), and picks up pairs other replicas renewed.

All Kubernetes calls happen here, at startup and in the background; never on the admission path.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient, CoreV1Api

from shared.cluster.kube import KubeApiError, call_for_text
from shared.core.clock import Clock
from shared.core.errors import truncate
from shared.core.tasks import cancel_and_wait
from webhook.cabundle import CaBundle
from webhook.certs import (
    KeyPair,
    generate_ca,
    inspect,
    issue_serving,
    key_matches,
    signed_by,
    split_bundle,
)
from webhook.errors import CertificateError
from webhook.settings import WebhookSettings
from webhook.tls import load_pair

logger = logging.getLogger(__name__)

TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
MANAGED_BY = "stellar-carbon-webhook"
MERGE_PATCH = "application/merge-patch+json"
_RETRY_AFTER_FAILURE = 30.0
"""Seconds before a failed check is tried again (at most the configured interval)."""


@dataclass(frozen=True, slots=True)
class StoredCertificates:
    """What the Secret holds: the serving pair and the CA (its certificate may be a bundle)."""

    serving: KeyPair
    ca: KeyPair
    resource_version: str | None = None

    @property
    def ca_bundle(self) -> bytes:
        return self.ca.cert_pem

    @property
    def empty(self) -> bool:
        """Nothing stored yet: the Secret as the chart creates it."""
        return not (self.serving.cert_pem or self.serving.key_pem or self.ca.cert_pem)


class SelfManagedCertificates:
    """Keeps the Secret, the SSL context and the webhook configuration's caBundle in step."""

    def __init__(
        self,
        api: ApiClient,
        settings: WebhookSettings,
        context: ssl.SSLContext,
        *,
        clock: Clock,
        on_reload: Callable[[KeyPair], None] | None = None,
    ) -> None:
        self._core = CoreV1Api(api)
        self._bundle = CaBundle(api, settings)
        self._settings = settings
        self._context = context
        self._clock = clock
        self._on_reload = on_reload
        self._installed: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.current: StoredCertificates | None = None

    # --- one pass ---------------------------------------------------------------------------

    async def ensure(self) -> StoredCertificates:
        """Read or create the Secret, renew what needs it, serve it, inject the CA."""
        now = self._clock()
        stored = await self._read()
        if stored is None:
            fresh = self._generate(now)
            stored = fresh if await self._create(fresh) else await self._read_required()
        problem = "none stored yet" if stored.empty else self._problem(stored, now)
        if problem is not None:
            logger.info("issuing a serving certificate: %s", problem)
            renewed = self._renew(stored, now)
            stored = (
                renewed if await self._replace(renewed, stored) else await self._read_required()
            )
        self._install(stored)
        await self._bundle.inject(stored.ca_bundle)
        self.current = stored
        return stored

    def _problem(self, stored: StoredCertificates, now: datetime) -> str | None:
        """Why the stored pair cannot be served as it is; None when it is fine."""
        try:
            serving = inspect(stored.serving.cert_pem)
            ca = inspect(stored.ca.cert_pem)
            if not key_matches(stored.serving):
                return "the serving key does not match its certificate"
            if not key_matches(stored.ca):
                return "the CA key does not match the CA certificate"
            if not signed_by(stored.serving.cert_pem, stored.ca_bundle):
                return "the serving certificate was not issued by the stored CA"
        except CertificateError as e:
            return str(e)
        if ca.needs_renewal(now):
            return f"the CA expires {ca.not_after:%Y-%m-%d}"
        if serving.needs_renewal(now):
            return f"the serving certificate expires {serving.not_after:%Y-%m-%d}"
        if not serving.covers(self._settings.dns_names, self._settings.extra_ips):
            return "the serving certificate lacks some of the configured names"
        return None

    def _generate(self, now: datetime) -> StoredCertificates:
        ca = self._new_ca(now)
        return StoredCertificates(serving=self._issue(ca, now), ca=ca)

    def _new_ca(self, now: datetime) -> KeyPair:
        return generate_ca(
            common_name=f"{self._settings.service_name}-ca",
            now=now,
            days=self._settings.ca_validity_days,
        )

    def _issue(self, ca: KeyPair, now: datetime) -> KeyPair:
        return issue_serving(
            ca,
            dns_names=self._settings.dns_names,
            ip_addresses=self._settings.extra_ips,
            now=now,
            days=self._settings.cert_validity_days,
        )

    def _renew(self, stored: StoredCertificates, now: datetime) -> StoredCertificates:
        """Keep a healthy CA and issue a new serving pair; otherwise start a new CA too."""
        ca: KeyPair | None = None
        with contextlib.suppress(CertificateError):
            if key_matches(stored.ca) and not inspect(stored.ca.cert_pem).needs_renewal(now):
                ca = stored.ca
        if ca is None:
            new_ca = self._new_ca(now)
            # Keep the old CA(s) in the bundle while they are valid: replicas that have not yet
            # picked up the new pair still serve certificates the old CA signed.
            kept = b""
            with contextlib.suppress(CertificateError):
                for pem in split_bundle(stored.ca_bundle):
                    if not inspect(pem).expired(now):
                        kept += pem
            ca = KeyPair(cert_pem=new_ca.cert_pem + kept, key_pem=new_ca.key_pem)
        return StoredCertificates(
            serving=self._issue(ca, now),
            ca=ca,
            resource_version=stored.resource_version,
        )

    def _install(self, stored: StoredCertificates) -> None:
        digest = stored.serving.digest
        if digest == self._installed:
            return
        load_pair(self._context, stored.serving)
        first = self._installed is None
        self._installed = digest
        info = inspect(stored.serving.cert_pem)
        logger.info(
            "serving certificate %s… valid until %s",
            info.fingerprint[:16],
            f"{info.not_after:%Y-%m-%dT%H:%M:%SZ}",
        )
        if not first and self._on_reload is not None:
            self._on_reload(stored.serving)

    # --- the Secret -------------------------------------------------------------------------

    async def _read(self) -> StoredCertificates | None:
        name, namespace = self._settings.secret_name, self._settings.secret_namespace
        status, body = await call_for_text(self._core.read_namespaced_secret, name, namespace)
        if status == 404:
            return None
        if status != 200:
            raise KubeApiError(status, truncate(body), action=f"read Secret {namespace}/{name}")
        return _from_secret(json.loads(body))

    async def _read_required(self) -> StoredCertificates:
        stored = await self._read()
        if stored is None:
            raise CertificateError(
                f"Secret {self._settings.secret_namespace}/{self._settings.secret_name} "
                "disappeared while it was being written"
            )
        return stored

    async def _create(self, stored: StoredCertificates) -> bool:
        """True when this replica's pair was stored; False when another replica was first."""
        namespace = self._settings.secret_namespace
        status, body = await call_for_text(
            self._core.create_namespaced_secret, namespace, self._secret_body(stored)
        )
        if status == 409:
            logger.info("another replica created the certificate Secret first; using its pair")
            return False
        if status not in (200, 201):
            raise KubeApiError(status, truncate(body), action=f"create Secret in {namespace}")
        logger.info("created Secret %s/%s with a new CA", namespace, self._settings.secret_name)
        return True

    async def _replace(self, stored: StoredCertificates, previous: StoredCertificates) -> bool:
        """Optimistic update of the data against the version read; False when another replica
        got there first. A merge patch of ``data`` only: the Secret's type, labels and
        annotations (the chart's ownership) stay as they are, and only ``patch`` is needed."""
        name, namespace = self._settings.secret_name, self._settings.secret_namespace
        body = {
            "metadata": {"resourceVersion": previous.resource_version},
            "data": _secret_data(stored),
        }
        status, text = await call_for_text(
            self._core.patch_namespaced_secret, name, namespace, body, _content_type=MERGE_PATCH
        )
        if status == 409:
            logger.info("another replica wrote the certificate first; using its pair")
            return False
        if status != 200:
            raise KubeApiError(status, truncate(text), action=f"patch Secret {namespace}/{name}")
        return True

    def _secret_body(self, stored: StoredCertificates) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self._settings.secret_name,
                "namespace": self._settings.secret_namespace,
                "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
            },
            "type": "kubernetes.io/tls",
            "data": _secret_data(stored),
        }

    # --- background -------------------------------------------------------------------------

    async def _loop(self) -> None:
        interval = wait = self._settings.rotation_check_interval
        while True:
            # A change to our webhook entries (a caBundle removed or replaced) wakes the check
            # at once. The Secret is read again before anything is written back, so replicas
            # that renew in turn never fight over the bundle with stale pairs.
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and stop() would then wait for the next check.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._bundle.changed.wait()
            self._bundle.changed.clear()
            try:
                await self.ensure()
                wait = interval
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Serving goes on with the installed pair; a failed repair is retried soon,
                # since no further change may come to wake the check.
                wait = min(interval, _RETRY_AFTER_FAILURE)
                logger.warning("certificate check failed, retrying in %.0fs: %s", wait, e)

    def start(self) -> None:
        if self._task is None:
            self._bundle.start()
            self._task = asyncio.create_task(self._loop(), name="certificate-rotation")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._bundle.stop()


def _from_secret(secret: dict[str, Any]) -> StoredCertificates:
    """The stored pair; missing or undecodable entries read as empty, which ``_problem`` reports
    and ``ensure`` repairs by issuing a new pair."""
    data = secret.get("data") or {}

    def entry(key: str) -> bytes:
        try:
            return base64.b64decode(data.get(key) or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            return b""

    return StoredCertificates(
        serving=KeyPair(entry(TLS_CERT), entry(TLS_KEY)),
        ca=KeyPair(entry(CA_CERT), entry(CA_KEY)),
        resource_version=(secret.get("metadata") or {}).get("resourceVersion"),
    )


def _secret_data(stored: StoredCertificates) -> dict[str, str]:
    return {
        TLS_CERT: _b64(stored.serving.cert_pem),
        TLS_KEY: _b64(stored.serving.key_pem),
        CA_CERT: _b64(stored.ca.cert_pem),
        CA_KEY: _b64(stored.ca.key_pem),
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
