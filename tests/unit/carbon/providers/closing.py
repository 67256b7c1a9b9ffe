"""Providers a test opens for itself, closed when the test ends whatever it raised."""

from __future__ import annotations

from typing import Protocol, TypeVar


class Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Closing:
    """Call with a provider to have it closed at teardown; answers the same provider."""

    def __init__(self) -> None:
        self._opened: list[Closable] = []

    def __call__(self, opened: C) -> C:
        self._opened.append(opened)
        return opened

    async def close_all(self) -> None:
        for opened in reversed(self._opened):
            await opened.close()
