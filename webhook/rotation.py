"""Self-managed serving certificates: one Secret for all replicas, the CA injected, renewed in time.

The Secret is the source of truth. The first replica to start creates it (a CA and a serving pair);
a replica that loses the create race (409) reads the winner's pair, so every replica serves the
same certificate. The CA goes into ``caBundle`` of every webhook in the named
MutatingWebhookConfiguration. A background check renews the serving certificate when less than a
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

from kubernetes_asyncio.client import AdmissionregistrationV1Api, ApiClient, CoreV1Api

from shared.cluster.kube import KubeApiError, call_for_text
from shared.core.clock import Clock
from shared.core.errors import truncate
from shared.core.tasks import cancel_and_wait
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


@dataclass(frozen=True, slots=True)
class StoredCertificates:
    """What the Secret holds: the serving pair and the CA (its certificate may be a bundle)."""

    serving: KeyPair
    ca: KeyPair
    resource_version: str | None = None

    @property
    def ca_bundle(self) -> bytes:
        return self.ca.cert_pem


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
        self._admission = AdmissionregistrationV1Api(api)
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
        problem = self._problem(stored, now)
        if problem is not None:
            logger.info("renewing the serving certificate: %s", problem)
            renewed = self._renew(stored, now)
            stored = (
                renewed if await self._replace(renewed, stored) else await self._read_required()
            )
        self._install(stored)
        await self._inject(stored.ca_bundle)
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
        """Optimistic update against the version read; False when another replica got there."""
        name, namespace = self._settings.secret_name, self._settings.secret_namespace
        body = self._secret_body(stored, resource_version=previous.resource_version)
        status, text = await call_for_text(
            self._core.replace_namespaced_secret, name, namespace, body
        )
        if status == 409:
            logger.info("another replica renewed the certificate first; using its pair")
            return False
        if status != 200:
            raise KubeApiError(status, truncate(text), action=f"replace Secret {namespace}/{name}")
        return True

    def _secret_body(
        self, stored: StoredCertificates, *, resource_version: str | None = None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self._settings.secret_name,
            "namespace": self._settings.secret_namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "kubernetes.io/tls",
            "data": {
                TLS_CERT: _b64(stored.serving.cert_pem),
                TLS_KEY: _b64(stored.serving.key_pem),
                CA_CERT: _b64(stored.ca.cert_pem),
                CA_KEY: _b64(stored.ca.key_pem),
            },
        }

    # --- caBundle ---------------------------------------------------------------------------

    async def _inject(self, ca_bundle: bytes) -> None:
        """Point every webhook of the configuration at ``ca_bundle``; absent config is not fatal.

        Read on every pass, not only when the CA changed: a configuration re-created or re-applied
        without the field (a reinstall, a GitOps tool owning it) must get its bundle back, or the
        API server fails every call and ``failurePolicy: Ignore`` admits every pod unpatched."""
        name = self._settings.webhook_config_name
        status, body = await call_for_text(
            self._admission.read_mutating_webhook_configuration, name
        )
        if status == 404:
            logger.warning("MutatingWebhookConfiguration %s not found; caBundle not set yet", name)
            return
        if status != 200:
            raise KubeApiError(
                status, truncate(body), action=f"read MutatingWebhookConfiguration {name}"
            )
        config = json.loads(body)
        wanted = _b64(ca_bundle)
        ops: list[dict[str, Any]] = []
        for index, webhook in enumerate(config.get("webhooks") or []):
            if (webhook.get("clientConfig") or {}).get("caBundle") == wanted:
                continue
            # The test guards against the list changing between our read and our patch.
            ops.append({"op": "test", "path": f"/webhooks/{index}/name", "value": webhook["name"]})
            ops.append(
                {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": wanted}
            )
        if ops:
            status, body = await call_for_text(
                self._admission.patch_mutating_webhook_configuration, name, ops
            )
            if status != 200:
                raise KubeApiError(
                    status, truncate(body), action=f"patch MutatingWebhookConfiguration {name}"
                )
            logger.info("caBundle set on %d webhook(s) of %s", len(ops) // 2, name)

    # --- background -------------------------------------------------------------------------

    async def _loop(self) -> None:
        interval = self._settings.rotation_check_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.ensure()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Serving goes on with the installed pair; the next check tries again.
                logger.warning("certificate check failed: %s", e)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="certificate-rotation")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
