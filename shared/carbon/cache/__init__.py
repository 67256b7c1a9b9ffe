"""The cache between the provider chain and the upstream carbon APIs.

``store`` holds ``CarbonCache`` (aiocache memory or Redis, single-flight loads), ``codecs`` the
JSON documents it writes, ``lock`` the lease replicas sharing Redis take so that one of them calls
upstream. Callers import from here.
"""

from shared.carbon.cache.codecs import (
    CURRENT,
    FORECAST,
    EntryKind,
    forecast_from_dict,
    forecast_to_dict,
    intensity_from_dict,
    intensity_to_dict,
    provenance_from_dict,
    provenance_to_dict,
)
from shared.carbon.cache.store import NAMESPACE, CacheEntry, CarbonCache

__all__ = [
    "CURRENT",
    "FORECAST",
    "NAMESPACE",
    "CacheEntry",
    "CarbonCache",
    "EntryKind",
    "forecast_from_dict",
    "forecast_to_dict",
    "intensity_from_dict",
    "intensity_to_dict",
    "provenance_from_dict",
    "provenance_to_dict",
]
