"""Talking to the Kubernetes API: the client, raw calls, and the one error type for refusals.

Calls go through the generated ``kubernetes_asyncio`` methods with ``_preload_content=False``: the
answer is then the aiohttp response itself, whatever its status, and objects stay raw JSON. The
generated models would cost more than the whole conversion, and the callers need the status codes
(404, 409, 410) as answers, not as exceptions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, cast

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.config import load_incluster_config, load_kube_config

from shared.core.errors import CarbonError, ConfigError, truncate

logger = logging.getLogger(__name__)

RawCall = Callable[..., Awaitable[aiohttp.ClientResponse]]
"""A generated API method with its arguments bound (``functools.partial`` of ``call_raw``)."""

_IN_CLUSTER_ENV: Final = "KUBERNETES_SERVICE_HOST"
_DEFAULT_KUBECONFIG: Final = "~/.kube/config"


class KubeApiError(CarbonError):
    """The API server answered a call with an error status."""

    def __init__(
        self,
        status: int,
        message: str,
        retry_after: float | None = None,
        *,
        action: str | None = None,
    ) -> None:
        """``message``: already short (see ``status_message`` and ``truncate``). ``action`` names
        what was being done (``read Secret ns/name``) when the status alone would not say."""
        text = f"HTTP {status}: {message}"
        super().__init__(f"{action}: {text}" if action else text)
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked us to wait (429 and some 5xx carry ``Retry-After``)."""


async def call_raw(
    method: Callable[..., Awaitable[object]], *args: Any, **kwargs: Any
) -> aiohttp.ClientResponse:
    """Call a generated API method and return the aiohttp response, error statuses included.

    The caller reads and releases it (``async with``).
    """
    response = await method(*args, **kwargs, _preload_content=False)
    return cast(aiohttp.ClientResponse, response)


async def call_for_text(
    method: Callable[..., Awaitable[object]], *args: Any, **kwargs: Any
) -> tuple[int, str]:
    """``call_raw`` for small answers: the status and the whole body as text."""
    response = await call_raw(method, *args, **kwargs)
    try:
        return response.status, (await response.read()).decode("utf-8", "replace")
    finally:
        response.release()


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds; the HTTP-date form is not used by kube-apiserver."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def status_message(body: str) -> str:
    """The ``message`` of a Kubernetes Status body, else the (truncated) body itself."""
    try:
        status = json.loads(body)
    except ValueError:
        return truncate(body)
    if isinstance(status, Mapping) and isinstance(status.get("message"), str):
        return truncate(status["message"])
    return truncate(body)


async def load_api_client(
    kubeconfig: str | None = None, *, context: str | None = None
) -> ApiClient:
    """An ``ApiClient`` for the cluster.

    With ``kubeconfig`` given, that file. Otherwise the pod's service account when running in a
    pod, else ``$KUBECONFIG`` (``:``-separated list allowed) or ``~/.kube/config``. Raises
    ``ConfigError`` when no usable configuration is found.
    """
    configuration = Configuration()
    if kubeconfig is None and os.environ.get(_IN_CLUSTER_ENV):
        source = "the in-cluster service account"
        try:
            load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except Exception as e:
            raise ConfigError(f"cannot load {source}: {truncate(str(e))}") from e
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or _DEFAULT_KUBECONFIG
        source = f"kubeconfig {path}"
        try:
            await load_kube_config(
                config_file=path,  # the loader expands ~ and splits ":"-separated lists
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except Exception as e:
            raise ConfigError(f"cannot load {source}: {truncate(str(e))}") from e
    logger.info("Kubernetes API at %s (from %s)", configuration.host, source)
    return ApiClient(configuration)
