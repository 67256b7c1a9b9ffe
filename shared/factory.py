"""Wiring: builds the provider chain, cache and background refresher from ``CarbonSettings``.

Both services call ``build_runtime`` once at startup; nothing else in the library reads settings
to decide which classes to construct.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from kubernetes_asyncio.client import ApiClient

from shared.carbon.cache import CarbonCache
from shared.carbon.chain import ProviderChain
from shared.carbon.providers.base import CarbonProvider
from shared.carbon.providers.carbonaware import CarbonAwareSdkProvider
from shared.carbon.providers.custom_http import DEFAULT_CACHE_TTL, CustomHttpProvider
from shared.carbon.providers.electricitymaps import ElectricityMapsProvider
from shared.carbon.providers.mock import MockProvider
from shared.carbon.providers.static import StaticProvider
from shared.carbon.refresh import CarbonRefresher
from shared.cluster.inventory import Inventory, RunningInventory
from shared.cluster.kube import KubeInventory
from shared.cluster.pods import STELLAR_POD_SELECTORS
from shared.core.clock import Clock, fixed, utcnow
from shared.core.errors import ConfigError
from shared.regions.catalog import RegionCatalog
from shared.settings import CarbonSettings

logger = logging.getLogger(__name__)


def settings_clock(settings: CarbonSettings) -> Clock:
    """The real clock, or the pinned one when ``STELLAR_CARBON_MOCK_CLOCK`` is set."""
    return fixed(settings.mock_clock) if settings.mock_clock is not None else utcnow


def build_provider(name: str, settings: CarbonSettings, clock: Clock) -> CarbonProvider:
    """One provider by its settings name."""
    timeout = settings.http_timeout
    if name == "electricitymaps":
        if settings.electricitymaps_token is None:
            raise ConfigError("STELLAR_CARBON_ELECTRICITYMAPS_TOKEN: required for electricitymaps")
        return ElectricityMapsProvider(
            settings.electricitymaps_token,
            base_url=settings.electricitymaps_url,
            emission_factor_type=str(settings.emission_factor_type),
            timeout=timeout,
            clock=clock,
        )
    if name == "carbon-aware-sdk":
        if settings.carbonaware_url is None:
            raise ConfigError("STELLAR_CARBON_CARBONAWARE_URL: required for carbon-aware-sdk")
        return CarbonAwareSdkProvider(
            settings.carbonaware_url,
            location_naming=settings.carbonaware_location.value,
            timeout=timeout,
            clock=clock,
        )
    if name == "http":
        if settings.custom_url is None:
            raise ConfigError("STELLAR_CARBON_CUSTOM_URL: required for http")
        return CustomHttpProvider(
            settings.custom_url,
            forecast_url=settings.custom_forecast_url,
            token=settings.custom_token,
            timeout=timeout,
            clock=clock,
            # The document is shared by every region of one refresh cycle; never let it outlive
            # the freshness a current value is allowed.
            cache_ttl=min(DEFAULT_CACHE_TTL, timedelta(seconds=settings.current_ttl)),
        )
    if name == "mock":
        return MockProvider(clock=clock, seed=settings.mock_seed)
    if name == "static":
        return StaticProvider(clock=clock)
    raise ConfigError(f"STELLAR_CARBON_PROVIDERS: unknown provider {name!r}")


@dataclass(frozen=True, slots=True)
class CarbonRuntime:
    """Everything a service needs to read carbon data: the catalog, the chain and the refresher."""

    settings: CarbonSettings
    catalog: RegionCatalog
    chain: ProviderChain
    refresher: CarbonRefresher
    clock: Clock

    def track_inventory(self, inventory: Inventory) -> None:
        """Track every region the cluster has nodes in, plus the configured extra regions."""
        self.refresher.track(regions_of(inventory))

    def kube_inventory(
        self,
        api: ApiClient,
        *,
        watch_pods: bool = False,
        pod_namespace: str | None = None,
        pod_selectors: Sequence[str] = STELLAR_POD_SELECTORS,
    ) -> KubeInventory:
        """A list+watch inventory whose node changes keep the tracked regions current, so a node
        in a new region gets carbon data at once."""
        inventory: KubeInventory | None = None

        def changed() -> None:
            if inventory is not None:
                self.track_inventory(inventory)

        inventory = KubeInventory(
            api,
            extra_region_key=self.settings.region_label,
            watch_pods=watch_pods,
            pod_namespace=pod_namespace,
            pod_selectors=pod_selectors,
            on_change=changed,
        )
        return inventory

    async def follow(self, inventory: RunningInventory, *, sync_wait: float = 30.0) -> None:
        """Start the inventory, wait (bounded) for its first list, which decides the regions to
        track, then start the background carbon refresh."""
        await inventory.start()
        if not await inventory.wait_synced(sync_wait):
            logger.warning("node inventory not synced after %.0fs; going on", sync_wait)
        self.track_inventory(inventory)
        await self.start()

    async def start(self) -> None:
        await self.refresher.start()

    async def close(self) -> None:
        await self.refresher.stop()
        await self.chain.close()


def regions_of(inventory: Inventory) -> set[str]:
    return {node.region for node in inventory.nodes.values() if node.region}


def build_runtime(
    settings: CarbonSettings,
    *,
    catalog: RegionCatalog | None = None,
    clock: Clock | None = None,
    providers: Iterable[CarbonProvider] | None = None,
) -> CarbonRuntime:
    """Build the runtime; ``providers`` replaces the configured chain (tests, benchmarks)."""
    clock = clock or settings_clock(settings)
    catalog = catalog or RegionCatalog.load(settings.region_overrides)
    chain_providers = (
        list(providers)
        if providers is not None
        else [build_provider(name, settings, clock) for name in settings.providers]
    )
    cache = CarbonCache.from_settings(settings, clock=clock)
    chain = ProviderChain(chain_providers, cache, settings=settings, clock=clock)
    refresher = CarbonRefresher(chain, catalog.resolve, settings=settings, clock=clock)
    logger.info(
        "carbon data from %s (cache: %s)",
        ",".join(p.name for p in chain_providers),
        "redis" if settings.redis_url else "memory",
    )
    return CarbonRuntime(settings, catalog, chain, refresher, clock)
