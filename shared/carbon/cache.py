"""The cache between the provider chain and the upstream carbon APIs.

Provider results are stored as JSON documents (explicit codecs below, never pickle) together with
the time they were fetched, so the chain can tell a fresh value (younger than its TTL) from a stale
one it may still serve during an outage. The backend is an aiocache memory cache by default, or
Redis when replicas should share values and therefore one API quota.

Loads are single-flight: concurrent requests for the same key in one process share one upstream
call, and processes sharing Redis take a short lock (``SET NX PX``) so that between them, too, one
of them calls upstream while the others wait for its result (or its failure). A failing cache
(Redis down) degrades to "no cache" with a log line; it never fails a load.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from aiocache import Cache
from aiocache.serializers import JsonSerializer
from redis.asyncio import BlockingConnectionPool

from shared.core.clock import Clock, utcnow
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownZone,
    truncate,
)
from shared.core.models import Forecast, ForecastPoint, Freshness, Intensity, Provenance
from shared.core.secret import Secret
from shared.core.tasks import SingleFlight

if TYPE_CHECKING:
    from shared.settings import CarbonSettings

logger = logging.getLogger(__name__)

T = TypeVar("T", Intensity, Forecast)

NAMESPACE = "stellar-carbon"
_FORMAT = 1
"""Version of the stored document; entries in another format are ignored (a miss)."""


# --- codecs -------------------------------------------------------------------------------------


def provenance_to_dict(provenance: Provenance) -> dict[str, Any]:
    return {
        "provider": provenance.provider,
        "fetchedAt": provenance.fetched_at.isoformat(),
        "freshness": provenance.freshness.value,
        "fallbackFrom": list(provenance.fallback_from),
    }


def provenance_from_dict(data: Mapping[str, Any]) -> Provenance:
    return Provenance(
        provider=str(data["provider"]),
        fetched_at=_time(data["fetchedAt"]),
        freshness=Freshness(data["freshness"]),
        fallback_from=tuple(str(name) for name in data["fallbackFrom"]),
    )


def intensity_to_dict(intensity: Intensity) -> dict[str, Any]:
    return {
        "zone": intensity.zone,
        "gPerKwh": intensity.g_per_kwh,
        "observedAt": intensity.observed_at.isoformat(),
        "provenance": provenance_to_dict(intensity.provenance),
        "estimated": intensity.estimated,
        "renewablePct": intensity.renewable_pct,
    }


def intensity_from_dict(data: Mapping[str, Any]) -> Intensity:
    renewable = data["renewablePct"]
    return Intensity(
        zone=str(data["zone"]),
        g_per_kwh=float(data["gPerKwh"]),
        observed_at=_time(data["observedAt"]),
        provenance=provenance_from_dict(data["provenance"]),
        estimated=bool(data["estimated"]),
        renewable_pct=None if renewable is None else float(renewable),
    )


def forecast_to_dict(forecast: Forecast) -> dict[str, Any]:
    return {
        "zone": forecast.zone,
        "generatedAt": forecast.generated_at.isoformat(),
        "points": [
            {
                "startsAt": point.starts_at.isoformat(),
                "gPerKwh": point.g_per_kwh,
                "durationSeconds": point.duration.total_seconds(),
            }
            for point in forecast.points
        ],
        "provenance": provenance_to_dict(forecast.provenance),
    }


def forecast_from_dict(data: Mapping[str, Any]) -> Forecast:
    return Forecast(
        zone=str(data["zone"]),
        generated_at=_time(data["generatedAt"]),
        points=tuple(
            ForecastPoint(
                starts_at=_time(point["startsAt"]),
                g_per_kwh=float(point["gPerKwh"]),
                duration=timedelta(seconds=float(point["durationSeconds"])),
            )
            for point in data["points"]
        ),
        provenance=provenance_from_dict(data["provenance"]),
    )


def _time(value: Any) -> datetime:
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError("naive timestamp in a cache entry")
    return moment


def _with_fetched_at(value: T, fetched_at: datetime) -> T:
    return replace(value, provenance=replace(value.provenance, fetched_at=fetched_at))


@dataclass(frozen=True, slots=True)
class EntryKind(Generic[T]):
    """What a key holds (current intensity or forecast) and how it is written as JSON."""

    name: str
    encode: Callable[[T], dict[str, Any]]
    decode: Callable[[Mapping[str, Any]], T]


CURRENT: EntryKind[Intensity] = EntryKind("current", intensity_to_dict, intensity_from_dict)
FORECAST: EntryKind[Forecast] = EntryKind("forecast", forecast_to_dict, forecast_from_dict)


@dataclass(frozen=True, slots=True)
class CacheEntry(Generic[T]):
    """A provider result and when it was fetched (by this process or a replica)."""

    value: T
    fetched_at: datetime

    def age(self, now: datetime) -> float:
        """Seconds since the fetch; never negative, even with a clock pinned in the past."""
        return max(0.0, (now - self.fetched_at).total_seconds())


# Errors a failed fetch is shared as, between processes waiting on the same lock.
_SHARED_ERRORS: dict[str, type[ProviderError]] = {
    cls.__name__: cls
    for cls in (ProviderUnavailable, ProviderAuthError, BadResponse, UnknownZone, NoForecast)
}


def _encode_failure(error: ProviderError, token: str) -> dict[str, Any]:
    message = str(error).removeprefix(f"{error.provider}: ")
    return {
        "token": token,
        "type": type(error).__name__,
        "provider": error.provider,
        "message": truncate(message),
        "retryAfter": error.retry_after if isinstance(error, RateLimited) else None,
    }


def _decode_failure(data: Mapping[str, Any]) -> ProviderError:
    provider, message = str(data["provider"]), str(data["message"])
    if data["type"] == RateLimited.__name__:
        retry_after = data["retryAfter"]
        return RateLimited(provider, message, None if retry_after is None else float(retry_after))
    return _SHARED_ERRORS.get(str(data["type"]), ProviderUnavailable)(provider, message)


# --- the cache ----------------------------------------------------------------------------------


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
        self._backend = backend
        self._shared = shared
        self.description = description
        self._clock = clock
        self._retain = retain
        self._lock_lease = lock_lease
        self._poll_interval = poll_interval
        self._retry_backend_after = retry_backend_after
        self._flights: SingleFlight[str] = SingleFlight()
        self._down_until: float | None = None
        self.errors = 0
        """Cache operations that failed since start (for metrics)."""
        self.last_error: str | None = None

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
        document = await self._read(_entry_key(kind, provider, key))
        if document is None:
            return None
        try:
            if document["format"] != _FORMAT:
                return None
            fetched_at = _time(document["fetchedAt"])
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
            outcome = await self._acquire(lock, token)
            if outcome is not _HELD:
                break  # ours, or no usable cache: fetch
            holder = await self._read(lock, raw=True) or holder
            if loop.time() >= deadline:
                logger.info("%s/%s: lock holder is slow, fetching anyway", provider, key)
                outcome = _UNLOCKED
                break
            await asyncio.sleep(self._poll_interval)
            fresh = await self._fresh(kind, provider, key, ttl)
            if fresh is not None:
                return fresh
            await self._raise_shared_failure(kind, provider, key, holder)
        try:
            if holder is not None:
                # The holder may have finished between our last look and our lock.
                fresh = await self._fresh(kind, provider, key, ttl)
                if fresh is not None:
                    return fresh
                await self._raise_shared_failure(kind, provider, key, holder)
            return await self._fetch(
                kind, provider, key, fetch, token=token if outcome is _ACQUIRED else None
            )
        finally:
            if outcome is _ACQUIRED:
                await self._release(lock, token)

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
                await self._write(
                    _failure_key(kind, provider, key), _encode_failure(e, token), self._lock_lease
                )
            raise
        fetched_at = self._clock()
        entry = CacheEntry(_with_fetched_at(value, fetched_at), fetched_at)
        document = {
            "format": _FORMAT,
            "fetchedAt": fetched_at.isoformat(),
            "value": kind.encode(entry.value),
        }
        await self._write(_entry_key(kind, provider, key), document, self._retain)
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
        document = await self._read(_failure_key(kind, provider, key))
        if not isinstance(document, dict) or document.get("token") != holder:
            return
        try:
            error = _decode_failure(document)
        except (KeyError, TypeError, ValueError):
            return
        raise error

    # backend access: every failure degrades to "no cache"

    def _usable(self) -> bool:
        return self._down_until is None or time.monotonic() >= self._down_until

    def _failed(self, operation: str, error: Exception) -> None:
        self.errors += 1
        self.last_error = f"{operation}: {type(error).__name__}"
        if self._down_until is None:
            logger.warning(
                "cache %s unavailable (%s failed: %s: %s); serving without a cache",
                self.description,
                operation,
                type(error).__name__,
                truncate(str(error)),
            )
        self._down_until = time.monotonic() + self._retry_backend_after

    def _succeeded(self) -> None:
        if self._down_until is not None:
            logger.info("cache %s is back", self.description)
            self._down_until = None

    async def _read(self, name: str, *, raw: bool = False) -> Any:
        if not self._usable():
            return None
        try:
            value = await self._backend.get(name, loads_fn=_as_is if raw else None)
        except Exception as e:  # any backend failure means "no cache", never a failed load
            self._failed("get", e)
            return None
        self._succeeded()
        return value

    async def _write(self, name: str, value: Any, ttl: float) -> None:
        if not self._usable():
            return
        try:
            await self._backend.set(name, value, ttl=float(ttl))
        except Exception as e:
            self._failed("set", e)
            return
        self._succeeded()

    async def _acquire(self, lock: str, token: str) -> object:
        if not self._usable():
            return _UNLOCKED
        try:
            # Stored unserialised, so the compare-and-delete below compares like with like.
            await self._backend.add(lock, token, ttl=float(self._lock_lease), dumps_fn=_as_is)
        except ValueError:  # aiocache's "key already exists": someone else holds it
            self._succeeded()
            return _HELD
        except Exception as e:
            self._failed("lock", e)
            return _UNLOCKED
        self._succeeded()
        return _ACQUIRED

    async def _release(self, lock: str, token: str) -> None:
        if not self._usable():
            return
        try:
            # Compare-and-delete, atomic in Redis: never drop a lock another process took after
            # ours expired. aiocache's RedLock releases through the same backend call.
            await self._backend._redlock_release(self._backend.build_key(lock), token)
        except Exception as e:
            self._failed("unlock", e)

    # lifecycle and health

    @property
    def available(self) -> bool:
        """False while the backend is failing and the cache is bypassed."""
        return self._down_until is None

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
        try:
            client = getattr(self._backend, "client", None)
            if client is not None:
                # aiocache 0.12 closes Redis with the deprecated ``close()``; redis-py wants this.
                await client.aclose(close_connection_pool=True)
            else:
                await self._backend.close()
        except Exception as e:
            logger.debug("closing cache %s failed: %s", self.description, type(e).__name__)


def _as_is(value: Any) -> Any:
    return value


_ACQUIRED = object()
_HELD = object()
_UNLOCKED = object()  # no usable cache: go ahead without a lock


def _entry_key(kind: EntryKind[Any], provider: str, key: str) -> str:
    return f"{kind.name}:{provider}:{key}"


def _lock_key(kind: EntryKind[Any], provider: str, key: str) -> str:
    return f"lock:{kind.name}:{provider}:{key}"


def _failure_key(kind: EntryKind[Any], provider: str, key: str) -> str:
    return f"failed:{kind.name}:{provider}:{key}"
