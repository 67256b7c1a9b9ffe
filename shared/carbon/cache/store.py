"""The store between the provider chain and the upstream carbon APIs: ``CarbonCache``.

Provider results are stored as JSON documents (``codecs``, never pickle) together with the time
they were fetched, so the chain can tell a fresh value (younger than its TTL) from a stale one it
may still serve during an outage. The backend is an aiocache memory cache by default, or Redis when
replicas should share values and therefore one API quota.

Loads are single-flight: concurrent requests for the same key in one process share one upstream
call, and processes sharing Redis take a short lease (``lock``) so that between them, too, one of
them calls upstream while the others wait for its result (or its failure). A failing cache (Redis
down) degrades to "no cache" with a log line; it never fails a load.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from aiocache import Cache
from aiocache.serializers import JsonSerializer
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.lock import Lock

from shared.carbon.cache.backend import HELD, UNLOCKED, FailSoftBackend
from shared.carbon.cache.codecs import EntryKind, failure_from_dict, failure_to_dict, parse_time
from shared.core.clock import Clock, utcnow
from shared.core.errors import ProviderError
from shared.core.models import Forecast, Intensity
from shared.core.secret import Secret
from shared.core.tasks import SingleFlight

if TYPE_CHECKING:
    from shared.settings import CarbonSettings

logger = logging.getLogger(__name__)

T = TypeVar("T", Intensity, Forecast)

NAMESPACE = "stellar-carbon"
_FORMAT = 1
"""Version of the stored document; entries in another format are ignored (a miss)."""


@dataclass(frozen=True, slots=True)
class CacheEntry(Generic[T]):
    """A provider result and when it was fetched (by this process or a replica)."""

    value: T
    fetched_at: datetime

    def age(self, now: datetime) -> float:
        """Seconds since the fetch; never negative, even with a clock pinned in the past."""
        return max(0.0, (now - self.fetched_at).total_seconds())


def _with_fetched_at(value: T, fetched_at: datetime) -> T:
    return replace(value, provenance=replace(value.provenance, fetched_at=fetched_at))


class CarbonCache:
    """Provider results by (kind, provider, location key), with single-flight loads.

    Build one with ``memory()``, ``redis(url)`` or ``from_settings(settings)``.
    """

    def __init__(
        self,
        backend: Any,
        *,
        shared: bool,
        description: str,
        clock: Clock = utcnow,
        retain: float = 21600.0 + 60.0,
        lock_lease: float = 15.0,
        poll_interval: float = 0.05,
        retry_backend_after: float = 5.0,
    ) -> None:
        """``backend`` is an aiocache cache using a JSON serializer.

        ``shared``: other processes use the same backend, so loads take a cross-process lock.
        ``retain``: seconds entries are kept at all (the longest a stale value may be served).
        ``lock_lease``: how long a lock holder may take before others stop waiting for it; longer
        than a provider's request timeout. ``retry_backend_after``: after a cache failure, seconds
        to run without the cache before trying it again.
        """
        self._backend = FailSoftBackend(
            backend,
            description=description,
            lock_lease=lock_lease,
            retry_after=retry_backend_after,
        )
        self._shared = shared
        self.description = description
        self._clock = clock
        self._retain = retain
        self._lock_lease = lock_lease
        self._poll_interval = poll_interval
        self._flights: SingleFlight[str] = SingleFlight()

    # construction

    @classmethod
    def memory(cls, *, clock: Clock = utcnow, retain: float = 21600.0 + 60.0) -> CarbonCache:
        """An in-process cache: nothing shared, nothing to configure."""
        backend = Cache(Cache.MEMORY, serializer=JsonSerializer(), namespace=NAMESPACE)
        return cls(backend, shared=False, description="memory", clock=clock, retain=retain)

    @classmethod
    def redis(
        cls,
        url: str | Secret,
        *,
        clock: Clock = utcnow,
        retain: float = 21600.0 + 60.0,
        lock_lease: float = 15.0,
        timeout: float = 2.0,
        pool_size: int = 16,
        namespace: str = NAMESPACE,
    ) -> CarbonCache:
        """A Redis-backed cache shared by every process using the same URL and namespace.

        ``timeout`` bounds each cache operation, so a hung Redis costs seconds, not the refresh;
        ``pool_size`` bounds the connections one process opens.
        """
        raw = url.reveal() if isinstance(url, Secret) else url
        parts = urlsplit(raw)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("expected a redis:// or rediss:// URL with a host")
        db = parts.path.strip("/")
        backend = Cache(
            Cache.REDIS,
            endpoint=parts.hostname,
            port=parts.port or 6379,
            db=int(db) if db else 0,
            password=unquote(parts.password) if parts.password else None,
            ssl=parts.scheme == "rediss",
            namespace=namespace,
            serializer=JsonSerializer(),
            timeout=timeout,
            create_connection_timeout=timeout,
            # Bursts wait for a pooled connection instead of failing with "too many connections".
            connection_pool_class=BlockingConnectionPool,
            pool_max_size=pool_size,
            connection_pool_kwargs={"timeout": timeout},
        )
        port = f":{parts.port}" if parts.port else ""
        return cls(
            backend,
            shared=True,
            description=f"redis {parts.hostname}{port}",
            clock=clock,
            retain=retain,
            lock_lease=lock_lease,
        )

    @classmethod
    def from_settings(cls, settings: CarbonSettings, *, clock: Clock = utcnow) -> CarbonCache:
        """Redis when ``STELLAR_CARBON_REDIS_URL`` is set, memory otherwise."""
        # Keep entries as long as any of them can still be served, plus a margin.
        retain = max(settings.max_stale, settings.current_ttl, settings.forecast_ttl) + 60.0
        if settings.redis_url is None:
            return cls.memory(clock=clock, retain=retain)
        return cls.redis(
            settings.redis_url,
            clock=clock,
            retain=retain,
            lock_lease=settings.http_timeout + 5.0,
        )

    # reading

    async def get(self, kind: EntryKind[T], provider: str, key: str) -> CacheEntry[T] | None:
        """The stored entry, fresh or not; None when absent, unreadable or the cache is down."""
        document = await self._backend.read(_entry_key(kind, provider, key))
        if document is None:
            return None
        try:
            if document["format"] != _FORMAT:
                return None
            fetched_at = parse_time(document["fetchedAt"])
            value = kind.decode(document["value"])
        except (KeyError, TypeError, ValueError) as e:
            logger.warning(
                "ignoring unreadable %s entry for %s/%s: %s", kind.name, provider, key, e
            )
            return None
        return CacheEntry(_with_fetched_at(value, fetched_at), fetched_at)

    async def load(
        self,
        kind: EntryKind[T],
        provider: str,
        key: str,
        fetch: Callable[[], Awaitable[T]],
        *,
        ttl: float,
    ) -> CacheEntry[T]:
        """A fresh entry (younger than ``ttl``), from the cache or from one ``fetch()``.

        Concurrent loads of one key share a single call; ``fetch``'s ``ProviderError`` reaches
        every waiter (the same exception object within a process).
        """
        return await self._flights.run(
            _entry_key(kind, provider, key),
            lambda: self._flight(kind, provider, key, fetch, ttl),
        )

    async def _flight(
        self,
        kind: EntryKind[T],
        provider: str,
        key: str,
        fetch: Callable[[], Awaitable[T]],
        ttl: float,
    ) -> CacheEntry[T]:
        fresh = await self._fresh(kind, provider, key, ttl)
        if fresh is not None:
            return fresh
        if not self._shared:
            return await self._fetch(kind, provider, key, fetch, token=None)
        return await self._locked_fetch(kind, provider, key, fetch, ttl)

    async def _locked_fetch(
        self,
        kind: EntryKind[T],
        provider: str,
        key: str,
        fetch: Callable[[], Awaitable[T]],
        ttl: float,
    ) -> CacheEntry[T]:
        lock = _lock_key(kind, provider, key)
        token = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lock_lease
        holder: str | None = None  # the flight we waited for, if any
        while True:
            outcome = await self._backend.acquire(lock, token)
            if outcome is not HELD:
                break  # our lease, or no usable cache: fetch
            holder = await self._backend.read(lock, raw=True) or holder
            if loop.time() >= deadline:
                logger.info("%s/%s: lock holder is slow, fetching anyway", provider, key)
                outcome = UNLOCKED
                break
            await asyncio.sleep(self._poll_interval)
            fresh = await self._fresh(kind, provider, key, ttl)
            if fresh is not None:
                return fresh
            await self._raise_shared_failure(kind, provider, key, holder)
        lease = outcome if isinstance(outcome, Lock) else None
        try:
            if holder is not None:
                # The holder may have finished between our last look and our lock.
                fresh = await self._fresh(kind, provider, key, ttl)
                if fresh is not None:
                    return fresh
                await self._raise_shared_failure(kind, provider, key, holder)
            return await self._fetch(
                kind, provider, key, fetch, token=token if lease is not None else None
            )
        finally:
            if lease is not None:
                await self._backend.release(lease)

    async def _fetch(
        self,
        kind: EntryKind[T],
        provider: str,
        key: str,
        fetch: Callable[[], Awaitable[T]],
        *,
        token: str | None,
    ) -> CacheEntry[T]:
        try:
            value = await fetch()
        except ProviderError as e:
            if token is not None:
                # Tell processes waiting on our lock what happened, so they do not call too.
                await self._backend.write(
                    _failure_key(kind, provider, key), failure_to_dict(e, token), self._lock_lease
                )
            raise
        fetched_at = self._clock()
        entry = CacheEntry(_with_fetched_at(value, fetched_at), fetched_at)
        document = {
            "format": _FORMAT,
            "fetchedAt": fetched_at.isoformat(),
            "value": kind.encode(entry.value),
        }
        await self._backend.write(_entry_key(kind, provider, key), document, self._retain)
        return entry

    async def _fresh(
        self, kind: EntryKind[T], provider: str, key: str, ttl: float
    ) -> CacheEntry[T] | None:
        entry = await self.get(kind, provider, key)
        if entry is not None and entry.age(self._clock()) < ttl:
            return entry
        return None

    async def _raise_shared_failure(
        self, kind: EntryKind[T], provider: str, key: str, holder: str | None
    ) -> None:
        if holder is None:
            return
        document = await self._backend.read(_failure_key(kind, provider, key))
        if not isinstance(document, dict) or document.get("token") != holder:
            return
        try:
            error = failure_from_dict(document)
        except (KeyError, TypeError, ValueError):
            return
        raise error

    # lifecycle and health

    @property
    def available(self) -> bool:
        """False while the backend is failing and the cache is bypassed."""
        return self._backend.available

    @property
    def errors(self) -> int:
        """Cache operations that failed since start (for metrics)."""
        return self._backend.errors

    @property
    def last_error(self) -> str | None:
        return self._backend.last_error

    def status(self) -> dict[str, Any]:
        """For health output: backend, whether it works, and how often it failed."""
        return {
            "backend": self.description,
            "shared": self._shared,
            "available": self.available,
            "errors": self.errors,
            "lastError": self.last_error,
        }

    async def close(self) -> None:
        self._flights.cancel_all()
        await self._backend.close()


def _entry_key(kind: EntryKind[Any], provider: str, key: str) -> str:
    return f"{kind.name}:{provider}:{key}"


def _lock_key(kind: EntryKind[Any], provider: str, key: str) -> str:
    return f"lock:{kind.name}:{provider}:{key}"


def _failure_key(kind: EntryKind[Any], provider: str, key: str) -> str:
    return f"failed:{kind.name}:{provider}:{key}"
