"""The cache backend as the store sees it: every failure degrades to "no cache".

Wraps an aiocache cache (memory, or Redis with its ``ReplicaLock``). A failed operation is counted
and logged once, then the backend is bypassed for a while before it is tried again, so an outage
costs one timeout per interval rather than one per load: meanwhile reads miss, and writes and
leases are skipped. Nothing here raises into a load.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio.lock import Lock

from shared.carbon.cache.lock import ReplicaLock
from shared.core.errors import truncate

logger = logging.getLogger(__name__)

HELD = object()
"""``acquire``'s answer when another process holds the lease."""
UNLOCKED = object()
"""``acquire``'s answer when the backend is down: go ahead without a lease."""


class FailSoftBackend:
    """An aiocache cache whose failures are recorded and turned into misses and no-ops."""

    def __init__(
        self, backend: Any, *, description: str, lock_lease: float, retry_after: float
    ) -> None:
        """``backend`` is an aiocache cache using a JSON serializer. ``retry_after``: seconds to
        run without it after a failure before trying it again."""
        self._backend = backend
        self._lock = ReplicaLock(backend, lease=lock_lease)
        self.description = description
        self._retry_after = retry_after
        self._down_until: float | None = None
        self.errors = 0
        """Operations that failed since start (for metrics)."""
        self.last_error: str | None = None

    @property
    def available(self) -> bool:
        """False while the backend is failing and bypassed."""
        return self._down_until is None

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
        self._down_until = time.monotonic() + self._retry_after

    def _succeeded(self) -> None:
        if self._down_until is not None:
            logger.info("cache %s is back", self.description)
            self._down_until = None

    async def read(self, name: str, *, raw: bool = False) -> Any:
        """The stored value (``raw``: as stored, not deserialised); None when absent or down."""
        if not self._usable():
            return None
        try:
            value = await self._backend.get(name, loads_fn=_as_is if raw else None)
        except Exception as e:  # any backend failure means "no cache", never a failed load
            self._failed("get", e)
            return None
        self._succeeded()
        return value

    async def write(self, name: str, value: Any, ttl: float) -> None:
        if not self._usable():
            return
        try:
            await self._backend.set(name, value, ttl=float(ttl))
        except Exception as e:
            self._failed("set", e)
            return
        self._succeeded()

    async def acquire(self, lock: str, token: str) -> Lock | object:
        """Our lease; ``HELD`` when another process has it; ``UNLOCKED`` if the cache is down."""
        if not self._usable():
            return UNLOCKED
        try:
            lease = await self._lock.acquire(lock, token)
        except Exception as e:
            self._failed("lock", e)
            return UNLOCKED
        self._succeeded()
        return HELD if lease is None else lease

    async def release(self, lease: Lock) -> None:
        if not self._usable():
            return
        try:
            await self._lock.release(lease)
        except Exception as e:
            self._failed("unlock", e)

    async def close(self) -> None:
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
