"""Small asyncio building blocks shared by the library and both services."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel background tasks and wait until they have really ended."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class SingleFlight(Generic[K]):
    """Concurrent callers asking for the same key share one running call.

    A caller being cancelled (a stopping refresh) does not cancel the call for the others; the
    call's result or exception reaches every waiter.
    """

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[Any]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[T]]) -> T:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(call())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._land(key, done))
        return cast(T, await asyncio.shield(flight))

    def _land(self, key: K, flight: asyncio.Future[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved here so an unawaited failure is not reported as lost

    def cancel_all(self) -> None:
        for flight in list(self._flights.values()):
            flight.cancel()
