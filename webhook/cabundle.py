"""The CA in ``caBundle`` of the webhook's own entries: set, watched, and put back when it drifts.

The self-managed mode owns one MutatingWebhookConfiguration (by name), and in it only the entries
that call this webhook: a ``clientConfig.service`` naming its Service, or a ``clientConfig.url``
whose host is a name or address its certificate carries. Other entries are left alone, since our
CA could not verify whoever serves them. A watch on that one configuration (a field selector on its
name, which RBAC can grant by ``resourceNames``) reports every change, so a ``caBundle`` someone
removes or replaces is restored within moments, without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from kubernetes_asyncio.client import AdmissionregistrationV1Api, ApiClient

from shared.cluster.kube import KubeApiError, WatchSettings, call_for_text, call_raw
from shared.cluster.kube.reflector import Reflector
from shared.core.errors import truncate
from shared.core.tasks import cancel_and_wait
from webhook.settings import WebhookSettings

logger = logging.getLogger(__name__)

OwnBundles = tuple[tuple[str, str | None], ...]
"""(entry name, caBundle) of each of our entries, in the configuration's order."""


def calls_us(entry: Mapping[str, Any], settings: WebhookSettings) -> bool:
    """The entry sends its reviews to this webhook: our Service, or a URL to one of our names."""
    client = entry.get("clientConfig")
    if not isinstance(client, Mapping):
        return False
    service = client.get("service")
    if isinstance(service, Mapping):
        return (service.get("name"), service.get("namespace")) == (
            settings.service_name,
            settings.service_namespace,
        )
    url = client.get("url")
    if not isinstance(url, str):
        return False
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    ours = {name.lower() for name in settings.dns_names} | set(settings.extra_ips)
    return host is not None and host.lower() in ours


def _entries(config: Mapping[str, Any]) -> Sequence[Any]:
    webhooks = config.get("webhooks")
    return webhooks if isinstance(webhooks, list) else ()


def own_bundles(config: Mapping[str, Any], settings: WebhookSettings) -> OwnBundles:
    """What the watch keeps of the configuration: our entries and their ``caBundle``."""
    return tuple(
        (str(entry.get("name")), (entry.get("clientConfig") or {}).get("caBundle"))
        for entry in _entries(config)
        if isinstance(entry, Mapping) and calls_us(entry, settings)
    )


def bundle_patch(
    config: Mapping[str, Any], wanted: str, settings: WebhookSettings
) -> list[dict[str, Any]]:
    """JSON patch setting ``caBundle`` to ``wanted`` (base64) on each of our entries lacking it.

    Each change is guarded by a ``test`` of the entry's name, so the patch fails rather than
    writing into someone else's entry if the list changed since ``config`` was read."""
    ops: list[dict[str, Any]] = []
    for index, entry in enumerate(_entries(config)):
        if not isinstance(entry, Mapping) or not calls_us(entry, settings):
            continue
        if (entry.get("clientConfig") or {}).get("caBundle") == wanted:
            continue
        ops.append({"op": "test", "path": f"/webhooks/{index}/name", "value": entry.get("name")})
        ops.append(
            {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": wanted}
        )
    return ops


class CaBundle:
    """Writes our CA into our entries of the named configuration, and watches it for drift."""

    def __init__(
        self,
        api: ApiClient,
        settings: WebhookSettings,
        *,
        watch: WatchSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._admission = AdmissionregistrationV1Api(api)
        self._settings = settings
        self.changed = asyncio.Event()
        """Set whenever our entries in the configuration change (or it appears or goes)."""
        name = settings.webhook_config_name
        self._watch: Reflector[str, OwnBundles] = Reflector(
            "mutatingwebhookconfigurations",
            partial(
                call_raw,
                self._admission.list_mutating_webhook_configuration,
                field_selector=f"metadata.name={name}",
            ),
            lambda raw: name,
            lambda raw: own_bundles(raw, settings),
            self.changed.set,
            watch or WatchSettings(),
            rng or random.Random(),  # noqa: S311 (jitter, not cryptography)
        )
        self._task: asyncio.Task[None] | None = None

    async def inject(self, ca_bundle: bytes) -> None:
        """Point our entries at ``ca_bundle``; an absent configuration is not an error (yet)."""
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
        if not own_bundles(config, self._settings):
            logger.warning("no webhook in %s calls %s", name, self._settings.service_name)
            return
        ops = bundle_patch(config, base64.b64encode(ca_bundle).decode("ascii"), self._settings)
        if not ops:
            return
        status, body = await call_for_text(
            self._admission.patch_mutating_webhook_configuration, name, ops
        )
        if status != 200:
            raise KubeApiError(
                status, truncate(body), action=f"patch MutatingWebhookConfiguration {name}"
            )
        logger.info("caBundle set on %d webhook(s) of %s", len(ops) // 2, name)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch.run(), name="ca-bundle-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
