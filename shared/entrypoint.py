"""How a service process starts and ends: settings or a one-line exit, logging, one run.

Every service (webhook, reporter, tier component) starts the same way: parse its settings from
the environment, or print the one-line error and exit 2; configure logging and log the effective
settings once (secrets as set/unset); run its ``serve`` coroutine until it returns, or log why it
could not start and exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from aiohttp import web

from shared.core.errors import ConfigError

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def freeze_startup_objects() -> None:
    """Move everything alive once a service is ready to serve (modules, the region catalog, the
    application) out of the garbage collector's reach. A full collection otherwise walks all of
    it again every few thousand allocations, and each such pass stalls a request by tens of
    milliseconds; objects made while serving are collected as before."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def health_site(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    """``app`` served on plain HTTP at ``host:port`` for as long as the context lasts: the
    health, readiness and metrics site of a component without an API of its own."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()


def stop_on_signals() -> asyncio.Event:
    """An event SIGTERM or SIGINT sets: what a service's ``serve`` waits for unless a test gives
    it an event of its own. Call it from the running event loop."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    return stopping


def settings_or_exit(program: str, parse: Callable[[Mapping[str, str]], T]) -> T:
    """``parse(os.environ)``, or the error on one stderr line and exit status 2."""
    try:
        return parse(os.environ)
    except ConfigError as e:
        print(f"{program}: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def start_logging(level: str, logger: logging.Logger, **described: Mapping[str, Any]) -> None:
    """Logging at ``level``, then one line per settings group (``webhook settings: {...}``)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for name, values in described.items():
        logger.info("%s settings: %s", name, values)


def run(
    main: Coroutine[Any, Any, None],
    logger: logging.Logger,
    *,
    fatal: tuple[type[Exception], ...] = (ConfigError,),
) -> None:
    """Run ``main`` to its end; a ``fatal`` error while starting is logged and exits status 1."""
    try:
        asyncio.run(main)
    except fatal as e:
        logger.error("cannot start: %s", e)
        raise SystemExit(1) from None
