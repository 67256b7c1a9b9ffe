"""The cluster inventory kept current from the Kubernetes API: list, then watch, forever.

``KubeInventory`` follows the client-go reflector pattern for nodes (and, when asked, Stellar pods):
a paginated list gives the full state and a resourceVersion; a watch from that version streams
changes; a stream the server ends is resumed from the last version seen; ``410 Gone`` (the version
was compacted away) means list again; any other failure is retried with exponential backoff and
jitter. Nothing here raises into the caller once started: readers always get the last good state.

Objects stay raw JSON (``_preload_content=False``) and go straight through
``shared.cluster.topology``; the generated models would cost more than the whole conversion.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar, cast

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
from kubernetes_asyncio.config import load_incluster_config, load_kube_config

from shared.cluster.inventory import NodeInfo, PodInfo
from shared.cluster.topology import node_from_manifest, pod_from_manifest, pod_role
from shared.core.backoff import Backoff
from shared.core.errors import CarbonError, ConfigError, truncate
from shared.core.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_RawCall = Callable[..., Awaitable[aiohttp.ClientResponse]]
OnChange = Callable[[], None]
"""Called (synchronously, on the event loop) after the inventory changed."""

_IN_CLUSTER_ENV: Final = "KUBERNETES_SERVICE_HOST"
_DEFAULT_KUBECONFIG: Final = "~/.kube/config"


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How the list + watch loops talk to the API server."""

    watch_timeout_s: float = 300.0
    """Server-side timeout asked for each watch. Randomised up to twice this, as client-go does, so
    replicas started together do not reconnect in step."""
    page_size: int = 500
    """Items per list page; large clusters are listed in pages rather than one huge response."""
    request_timeout_s: float = 30.0
    """Limit for each list page and for connecting."""
    backoff_initial_s: float = 0.5
    """First retry delay after a failure; doubles per consecutive failure."""
    backoff_max_s: float = 30.0
    """Retry delays never exceed this."""
    min_watch_s: float = 1.0
    """A watch the server ends sooner than this without sending anything counts as a failure, so a
    misbehaving server cannot make the loop spin."""


class _Gone(Exception):
    """The resourceVersion we watch from is too old (HTTP 410 or a 410 ERROR event)."""


class KubeApiError(CarbonError):
    """The API server answered with an error status (other than 410)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked us to wait (429 and some 5xx carry ``Retry-After``)."""


class _Reflector(Generic[K, V]):
    """One resource kept in a local store by list + watch."""

    def __init__(
        self,
        kind: str,
        call: _RawCall,
        key_of: Callable[[Mapping[str, Any]], K | None],
        convert: Callable[[Mapping[str, Any]], V | None],
        changed: Callable[[], None],
        settings: WatchSettings,
        rng: random.Random,
    ) -> None:
        self.kind = kind
        self._call = call
        self._key_of = key_of
        self._convert = convert
        self._changed = changed
        self._settings = settings
        self._rng = rng
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, rng=rng)
        self._items: dict[K, V] = {}
        self._view: Mapping[K, V] | None = None
        self.synced = asyncio.Event()
        self.last_error: str | None = None

    @property
    def items(self) -> Mapping[K, V]:
        # Readers get an immutable snapshot, copied at most once per change, so iterating it can
        # never race with the watch loop.
        if self._view is None:
            self._view = MappingProxyType(dict(self._items))
        return self._view

    async def run(self) -> None:
        version: str | None = None
        failures = 0
        gone_in_a_row = 0
        while True:
            try:
                if version is None:
                    version = await self._list()
                    failures = 0
                version, delivered = await self._watch(version)
                gone_in_a_row = 0
                if delivered:
                    failures = 0
                    continue
                failures += 1
            except asyncio.CancelledError:
                raise
            except _Gone:
                logger.info("%s: resourceVersion %s expired, listing again", self.kind, version)
                version = None
                gone_in_a_row += 1
                # One relist is the normal answer; 410 again straight after means the server is
                # unwell, so slow down like any other failure.
                if gone_in_a_row == 1:
                    continue
                failures += 1
            except Exception as e:
                failures += 1
                self.last_error = truncate(f"{type(e).__name__}: {e}")
                retry_after = e.retry_after if isinstance(e, KubeApiError) else None
                if retry_after is not None:
                    # The server's wish is honoured only up to our own longest wait.
                    retry_after = min(retry_after, self._settings.backoff_max_s)
                delay = self._backoff.delay(failures, retry_after=retry_after)
                logger.warning(
                    "%s: list/watch failed, retrying in %.1fs: %s",
                    self.kind,
                    delay,
                    self.last_error,
                )
                await asyncio.sleep(delay)
                continue
            await asyncio.sleep(self._backoff.delay(failures))

    async def _request(self, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await self._call(**kwargs)
        if response.status == 410:
            response.release()
            raise _Gone
        if not 200 <= response.status < 300:
            async with response:
                body = await response.text(errors="replace")
            retry_after = _seconds(response.headers.get("Retry-After"))
            raise KubeApiError(response.status, _status_message(body), retry_after)
        return response

    async def _list(self) -> str | None:
        items: dict[K, V] = {}
        version: str | None = None
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": self._settings.page_size,
                "_request_timeout": aiohttp.ClientTimeout(total=self._settings.request_timeout_s),
            }
            if token:
                kwargs["_continue"] = token
            async with await self._request(**kwargs) as response:
                body = json.loads(await response.read())
            for raw in body.get("items") or ():
                key, value = self._decode(raw)
                if key is not None and value is not None:
                    items[key] = value
            metadata = body.get("metadata") or {}
            version = metadata.get("resourceVersion") or None
            token = metadata.get("continue") or None
            if not token:
                break
        changed = items != self._items
        self._items = items
        self._view = None
        self.last_error = None
        self.synced.set()
        logger.info("%s: listed %d at resourceVersion %s", self.kind, len(items), version)
        if changed:
            self._changed()
        return version

    async def _watch(self, version: str | None) -> tuple[str | None, bool]:
        """Stream changes from ``version`` until the server ends the watch.

        Returns the last version seen and whether anything arrived (or the watch lasted long
        enough to count as healthy).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        timeout = self._settings.watch_timeout_s * self._rng.uniform(1.0, 2.0)
        kwargs: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "timeout_seconds": max(1, round(timeout)),
            # The server closes the stream at timeout_seconds; sock_read only catches a connection
            # that died without closing.
            "_request_timeout": aiohttp.ClientTimeout(
                total=None,
                sock_connect=self._settings.request_timeout_s,
                sock_read=timeout + self._settings.request_timeout_s,
            ),
        }
        if version:
            kwargs["resource_version"] = version
        delivered = False
        async with await self._request(**kwargs) as response:
            self.last_error = None
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if not isinstance(event, Mapping):
                    raise ValueError("watch stream sent something other than an event object")
                version = self._apply(event, version)
                delivered = True
        lasted = loop.time() - started >= self._settings.min_watch_s
        return version, delivered or lasted

    def _apply(self, event: Mapping[str, Any], version: str | None) -> str | None:
        kind = event.get("type")
        raw = event.get("object")
        if not isinstance(raw, Mapping):
            raise ValueError(f"watch event {kind!r} without an object")
        if kind == "ERROR":
            code = raw.get("code")
            if code == 410:
                raise _Gone
            raise KubeApiError(code if isinstance(code, int) else 0, str(raw.get("message", "")))
        metadata = raw.get("metadata")
        if isinstance(metadata, Mapping) and metadata.get("resourceVersion"):
            version = str(metadata["resourceVersion"])
        if kind == "BOOKMARK":
            return version
        if kind in ("ADDED", "MODIFIED"):
            key, value = self._decode(raw)
            if key is None:
                return version
            if value is None:
                self._discard(key)
            elif self._items.get(key) != value:
                self._items[key] = value
                self._view = None
                self._changed()
        elif kind == "DELETED":
            key = self._key_of(raw)
            if key is not None:
                self._discard(key)
        else:
            logger.warning("%s: ignoring watch event of type %r", self.kind, kind)
        return version

    def _discard(self, key: K) -> None:
        if self._items.pop(key, None) is not None:
            self._view = None
            self._changed()

    def _decode(self, raw: object) -> tuple[K | None, V | None]:
        """Key and value of one object; an unreadable object is dropped rather than trusted."""
        key = self._key_of(raw) if isinstance(raw, Mapping) else None
        if key is None or not isinstance(raw, Mapping):
            logger.warning("%s: ignoring an object without a name", self.kind)
            return None, None
        try:
            return key, self._convert(raw)
        except Exception as e:
            # Whatever is wrong with one object must not stop the stream: retrying the watch would
            # only meet the same object again.
            logger.warning("%s: ignoring %s: %s", self.kind, key, e)
            return key, None


def _raw(call: Callable[..., Awaitable[object]], *args: Any, **fixed: Any) -> _RawCall:
    """``call`` with ``_preload_content=False``: it then returns the aiohttp response itself."""

    async def request(**kwargs: Any) -> aiohttp.ClientResponse:
        response = await call(*args, **fixed, **kwargs, _preload_content=False)
        return cast(aiohttp.ClientResponse, response)

    return request


def _seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in seconds; the HTTP-date form is not used by kube-apiserver."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _status_message(body: str) -> str:
    """The ``message`` of a Kubernetes Status body, else the (truncated) body itself."""
    try:
        status = json.loads(body)
    except ValueError:
        return truncate(body)
    if isinstance(status, Mapping) and isinstance(status.get("message"), str):
        return truncate(status["message"])
    return truncate(body)


def _metadata(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = raw.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _node_key(raw: Mapping[str, Any]) -> str | None:
    name = _metadata(raw).get("name")
    return name if isinstance(name, str) and name else None


def _pod_key(raw: Mapping[str, Any]) -> tuple[str, str] | None:
    metadata = _metadata(raw)
    name, namespace = metadata.get("name"), metadata.get("namespace") or "default"
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return namespace, name


def _stellar_pod(raw: Mapping[str, Any]) -> PodInfo | None:
    labels = _metadata(raw).get("labels")
    if not isinstance(labels, Mapping) or pod_role(labels) is None:
        return None
    return pod_from_manifest(raw)


class KubeInventory:
    """Nodes (and optionally Stellar pods) of the cluster, kept current in the background.

    Implements ``shared.cluster.inventory.Inventory``. Reads are synchronous and return immutable
    snapshots. The ``ApiClient`` belongs to the caller, who closes it after ``stop()``.

    ``pod_namespace`` limits the pod watch to one namespace (all namespaces by default).
    ``pod_label_selector`` narrows the pods the server sends (for example
    ``app.kubernetes.io/managed-by=stellar-operator``). By default every pod is watched, since no
    single selector covers all the role conventions; only Stellar pods (see
    ``shared.cluster.topology.pod_role``) are kept either way. ``on_change`` is called after every
    change that alters a node or pod the inventory keeps (status heartbeats do not).
    """

    def __init__(
        self,
        api: ApiClient,
        *,
        extra_region_key: str | None = None,
        watch_pods: bool = False,
        pod_namespace: str | None = None,
        pod_label_selector: str | None = None,
        on_change: OnChange | None = None,
        settings: WatchSettings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        core = CoreV1Api(api)
        settings = settings or WatchSettings()
        rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._on_change = on_change
        self._tasks: list[asyncio.Task[None]] = []

        def convert_node(raw: Mapping[str, Any]) -> NodeInfo:
            return node_from_manifest(raw, extra_region_key)

        self._nodes: _Reflector[str, NodeInfo] = _Reflector(
            "nodes", _raw(core.list_node), _node_key, convert_node, self._notify, settings, rng
        )
        self._pods: _Reflector[tuple[str, str], PodInfo] | None = None
        if watch_pods:
            selector = {"label_selector": pod_label_selector} if pod_label_selector else {}
            list_pods = (
                _raw(core.list_namespaced_pod, pod_namespace, **selector)
                if pod_namespace
                else _raw(core.list_pod_for_all_namespaces, **selector)
            )
            self._pods = _Reflector(
                "pods", list_pods, _pod_key, _stellar_pod, self._notify, settings, rng
            )

    # --- Inventory ------------------------------------------------------------------------------

    @property
    def nodes(self) -> Mapping[str, NodeInfo]:
        return self._nodes.items

    @property
    def pods(self) -> Mapping[tuple[str, str], PodInfo]:
        return self._pods.items if self._pods is not None else MappingProxyType({})

    @property
    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self._reflectors())

    @property
    def last_error(self) -> str | None:
        """The latest list/watch failure not yet followed by a success, for health checks."""
        errors = [f"{r.kind}: {r.last_error}" for r in self._reflectors() if r.last_error]
        return "; ".join(errors) or None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the list + watch loops. Returns at once; see ``wait_synced``."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(r.run(), name=f"inventory-{r.kind}") for r in self._reflectors()
        ]

    async def wait_synced(self, timeout: float) -> bool:  # noqa: ASYNC109 (a bool, not an error)
        """Wait up to ``timeout`` seconds for the first full list; True when synced."""
        try:
            async with asyncio.timeout(timeout):
                for reflector in self._reflectors():
                    await reflector.synced.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop the loops and wait for them to end. The last state stays readable."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(*tasks)

    def _reflectors(self) -> list[_Reflector[Any, Any]]:
        return [self._nodes] if self._pods is None else [self._nodes, self._pods]

    def _notify(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:
            # A broken listener must not stop the inventory from following the cluster.
            logger.exception("inventory change callback failed")


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
