"""One resource kept in a local store from the Kubernetes API: list, then watch, forever.

``Reflector`` follows the client-go reflector pattern: a paginated list gives the full state and a
resourceVersion; a watch from that version streams changes; a stream the server ends is resumed
from the last version seen; ``410 Gone`` (the version was compacted away) means list again; any
other failure is retried with exponential backoff and jitter (``shared.core.backoff``). Nothing
here raises into the caller once started: readers always get the last good state.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import aiohttp
import orjson

from shared.cluster.kube.api import KubeApiError, RawCall, retry_after_seconds, status_message
from shared.core.backoff import Backoff
from shared.core.errors import truncate
from shared.core.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


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


class Reflector(Generic[K, V]):
    """One resource kept in a local store by list + watch."""

    def __init__(
        self,
        kind: str,
        call: RawCall,
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
        self.heard_at: float | None = None
        """``time.monotonic()`` of the last list or watch event (bookmarks included)."""

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
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise KubeApiError(response.status, status_message(body), retry_after)
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
                body = orjson.loads(await response.read())
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
        self.heard_at = time.monotonic()
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
                event = orjson.loads(line)
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
        self.heard_at = time.monotonic()
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


class ReflectorGroup(abc.ABC):
    """Several list + watch loops started, awaited and stopped together.

    The node inventory and the workload watches are both such a group; a subclass names its
    reflectors and a task name prefix.
    """

    _task_prefix = "watch"

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    @abc.abstractmethod
    def _reflectors(self) -> Sequence[Reflector[Any, Any]]:
        """The loops of the group, in the order they sync."""

    @property
    def synced(self) -> bool:
        return all(r.synced.is_set() for r in self._reflectors())

    @property
    def last_error(self) -> str | None:
        """The latest list/watch failure not yet followed by a success, for health checks."""
        errors = [f"{r.kind}: {r.last_error}" for r in self._reflectors() if r.last_error]
        return "; ".join(errors) or None

    async def start(self) -> None:
        """Start the list + watch loops. Returns at once; see ``wait_synced``."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(r.run(), name=f"{self._task_prefix}-{r.kind}")
            for r in self._reflectors()
        ]

    async def wait_synced(self, timeout: float) -> bool:  # noqa: ASYNC109 (a bool, not an error)
        """Wait up to ``timeout`` seconds for the first full list of each; True when synced."""
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
