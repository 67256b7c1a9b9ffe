"""How every service process ends: SIGTERM or SIGINT sets the event its ``serve`` waits for."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

import pytest

from shared.entrypoint import freeze_startup_objects, stop_on_signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_termination_signal_sets_the_stop_event(signum: signal.Signals) -> None:
    loop = asyncio.get_running_loop()
    stopping = stop_on_signals()
    try:
        assert not stopping.is_set()
        os.kill(os.getpid(), signum)
        async with asyncio.timeout(5):
            await stopping.wait()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGINT)


def test_what_lives_at_startup_is_left_out_of_later_collections() -> None:
    startup = {"catalog": list(range(1000))}
    try:
        freeze_startup_objects()

        assert gc.get_freeze_count() > 0
        # The startup object now sits in the permanent generation, outside every generation the
        # collector walks.
        assert all(startup is not o for generation in range(3) for o in gc.get_objects(generation))
        # Objects made while serving are still tracked and collected as before.
        assert gc.is_tracked({"request": []})
    finally:
        gc.unfreeze()
