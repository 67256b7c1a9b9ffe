"""The short cross-replica lease that lets one replica call upstream while the others wait.

Redis's own lock pattern through redis-py's public ``Lock``, on the client of the aiocache Redis
backend: ``SET NX PX`` takes the lease, an atomic compare-and-delete gives it back, so a replica
never drops a lease another replica took after its own ran out. The token is chosen by the caller
and stays readable under the lock's key: a waiting replica reads it to know whose failure report
(see ``codecs.failure_to_dict``) answers its wait.

Backend failures propagate; the store decides that they mean "no cache".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockNotOwnedError

logger = logging.getLogger(__name__)


class ReplicaLock:
    """Leases on named keys of one aiocache Redis backend (its namespace applies to the names)."""

    def __init__(self, backend: Any, *, lease: float) -> None:
        """``lease``: how long a holder keeps the key before it expires by itself."""
        self._backend = backend
        self._lease = lease

    async def acquire(self, name: str, token: str) -> Lock | None:
        """Our lease on ``name``, held under ``token``; None when another replica holds it."""
        client: Redis = self._backend.client
        lock = client.lock(
            self._backend.build_key(name),
            timeout=self._lease,
            blocking=False,
            thread_local=False,  # acquired and released by one task, not one thread
        )
        # Bounded like every other cache operation, so a hung Redis costs seconds, not the load.
        async with asyncio.timeout(self._backend.timeout):
            acquired = await lock.acquire(token=token)
        return lock if acquired else None

    async def release(self, lock: Lock) -> None:
        """Give the lease back, unless it ran out and the key is no longer ours."""
        try:
            await lock.release()
        except LockNotOwnedError:
            logger.debug("lease on %s ran out before it was released", lock.name)
