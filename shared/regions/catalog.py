"""The region catalog: for each cloud region, the grid zone it draws from, where it is, its PUE and
the annual grid intensity that serves as the last-resort (static) carbon value.

Built from the Green Software Foundation's real-time-cloud "Cloud Region Metadata" dataset shipped
in ``shared/data`` (its README gives the attribution; ``shared.regions.gsf`` reads it, with a few
documented corrections), plus an optional user file of on-prem or custom regions
(``shared.regions.overrides``). Every value here is an annual or site-level figure; live
intensities come from the providers.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Final

from shared.core.errors import CatalogError
from shared.core.models import Cloud, RegionInfo
from shared.regions.gsf import read_gsf_regions
from shared.regions.overrides import RegionOverride, read_overrides

logger = logging.getLogger(__name__)

DATA_FILE: Final = "gsf-cloud-region-metadata.csv"
"""The packaged dataset inside ``shared.data``."""

CLOUD_ORDER: Final[tuple[Cloud, ...]] = (Cloud.ONPREM, Cloud.AWS, Cloud.GCP, Cloud.AZURE)
"""Which cloud wins when a region name exists in several and the caller does not say which.

User-defined (on-prem) regions come first: a cluster whose nodes carry a custom label that happens
to equal a public region name meant its own definition.
"""


def normalise_region_name(name: str) -> str:
    """The form names are matched in: case-folded, no whitespace (``East US 2`` → ``eastus2``)."""
    return "".join(name.split()).casefold()


class RegionCatalog:
    """Immutable lookup of regions by name (or alias), cloud and grid zone."""

    def __init__(
        self, entries: Iterable[RegionInfo], sources: Mapping[str, str] | None = None
    ) -> None:
        """``entries`` later in the iterable replace earlier ones with the same ``cloud/region``.

        ``sources`` maps ``RegionInfo.key`` to where its annual intensity came from.
        """
        by_name: dict[tuple[Cloud, str], RegionInfo] = {}
        for info in entries:
            by_name[(info.cloud, normalise_region_name(info.region))] = info
        ordered = sorted(by_name.values(), key=lambda r: (CLOUD_ORDER.index(r.cloud), r.region))
        self._regions: tuple[RegionInfo, ...] = tuple(ordered)
        keys = {info.key for info in ordered}
        self._sources: dict[str, str] = {
            key: text for key, text in (sources or {}).items() if key in keys
        }
        self._by_name: dict[str, list[RegionInfo]] = defaultdict(list)
        self._by_alias: dict[str, list[RegionInfo]] = defaultdict(list)
        self._by_zone: dict[str, list[RegionInfo]] = defaultdict(list)
        for info in self._regions:
            self._by_name[normalise_region_name(info.region)].append(info)
            for alias in info.aliases:
                self._by_alias[normalise_region_name(alias)].append(info)
            if info.zone:
                self._by_zone[info.zone.casefold()].append(info)

    @classmethod
    def load(cls, overrides: str | os.PathLike[str] | None = None) -> RegionCatalog:
        """The packaged catalog (loaded once per process), plus the regions in ``overrides``.

        Raises ``CatalogError`` naming the entry and field when the overrides file is invalid.
        """
        base = _packaged_catalog()
        if overrides is None:
            return base
        return base.with_overrides(read_overrides(overrides))

    @classmethod
    def from_gsf_csv(cls, text: str, source: str = DATA_FILE) -> RegionCatalog:
        """Build a catalog from the text of a GSF Cloud Region Metadata CSV."""
        entries, sources = read_gsf_regions(text, source)
        return cls(entries, sources)

    def with_overrides(self, overrides: Sequence[RegionOverride]) -> RegionCatalog:
        """A new catalog where each override adds a region or replaces the one it names.

        An override without ``cloud`` replaces the catalog region of that name when exactly one
        cloud has it, and otherwise defines an on-prem region. A replaced region keeps the site
        facts the override leaves out (location, coordinates, PUE, aliases); its annual intensity
        and WattTime region are kept only when the zone stays the same (they describe the grid).
        """
        entries = list(self._regions)
        sources = dict(self._sources)
        seen: dict[tuple[Cloud, str], int] = {}
        for override in overrides:
            target = self._override_target(override)
            info = override.apply_to(target)
            name = (info.cloud, normalise_region_name(info.region))
            if name in seen:
                raise CatalogError(
                    f"{override.origin}: defines {info.key} again (first in entry {seen[name]})"
                )
            seen[name] = override.index
            entries.append(info)
            if override.annual_g_per_kwh is not None:
                sources[info.key] = override.origin
            elif info.annual_g_per_kwh is None:
                sources.pop(info.key, None)
        if overrides:
            logger.info("region overrides applied: %d entries", len(overrides))
        return RegionCatalog(entries, sources)

    def _override_target(self, override: RegionOverride) -> RegionInfo | None:
        if override.cloud is not None:
            return self._exact(override.region, override.cloud)
        named = self._by_name.get(normalise_region_name(override.region), [])
        if len(named) > 1:
            clouds = ", ".join(str(info.cloud) for info in named)
            raise CatalogError(
                f"{override.origin}: field 'cloud': region {override.region!r} exists in several "
                f"clouds ({clouds}); say which one"
            )
        return named[0] if named else None

    def _exact(self, region: str, cloud: Cloud) -> RegionInfo | None:
        for info in self._by_name.get(normalise_region_name(region), []):
            if info.cloud is cloud:
                return info
        return None

    @property
    def regions(self) -> tuple[RegionInfo, ...]:
        """Every region, mapped or not, ordered by ``CLOUD_ORDER`` then name."""
        return self._regions

    @property
    def unmapped(self) -> tuple[RegionInfo, ...]:
        """Regions without a grid zone: only the static annual value (if any) can describe them."""
        return tuple(info for info in self._regions if info.zone is None)

    def __len__(self) -> int:
        return len(self._regions)

    def resolve(self, region: str, cloud: Cloud | None = None) -> RegionInfo | None:
        """The region a node label (or setting) names, or None when the catalog does not know it.

        Matches the region name case- and whitespace-insensitively, then aliases (Azure display
        names such as ``East US``). With ``cloud``, that cloud's region wins; otherwise a region's
        own name wins over another region's alias, and a name several clouds share goes to the first
        in ``CLOUD_ORDER``.
        """
        key = normalise_region_name(region)
        if not key:
            return None
        candidates = [*self._by_name.get(key, []), *self._by_alias.get(key, [])]
        if cloud is not None:
            for info in candidates:
                if info.cloud is cloud:
                    return info
        return candidates[0] if candidates else None

    def by_zone(self, zone: str) -> tuple[RegionInfo, ...]:
        """Regions drawing from grid zone ``zone`` (case-insensitive)."""
        return tuple(self._by_zone.get(zone.casefold(), ()))

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        """Up to ``n`` region names similar to ``name``, best first, for "did you mean" hints."""
        names: dict[str, str] = {}
        for info in self._regions:
            names.setdefault(normalise_region_name(info.region), info.region)
            for alias in info.aliases:
                names.setdefault(normalise_region_name(alias), info.region)
        found: list[str] = []
        for match in difflib.get_close_matches(normalise_region_name(name), names, n=n * 3):
            region = names[match]
            if region not in found:
                found.append(region)
        return found[:n]

    def annual_source(self, region: RegionInfo) -> str | None:
        """Where ``region``'s annual intensity came from: dataset, year and column, or override."""
        return self._sources.get(region.key)


@functools.cache
def _packaged_catalog() -> RegionCatalog:
    text = resources.files("shared.data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    catalog = RegionCatalog.from_gsf_csv(text)
    logger.info(
        "region catalog loaded: %d regions, %d without a grid zone",
        len(catalog),
        len(catalog.unmapped),
    )
    return catalog
