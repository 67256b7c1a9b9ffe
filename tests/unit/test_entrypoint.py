"""How every service process ends: SIGTERM or SIGINT sets the event its ``serve`` waits for."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from shared.entrypoint import stop_on_signals


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
