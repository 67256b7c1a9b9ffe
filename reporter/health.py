"""Health: can the reporter answer, and how trustworthy are its answers right now?

Two checks are the reporter's own and decide whether it can serve at all: carbon data (is anything
known?) and Kubernetes (has the inventory been listed?). Provider and cache checks come from the
carbon library through a ``HealthSource`` and can only degrade the status. ``GET health`` answers
200 while the reporter can serve, degraded included, and 503 when it cannot.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from reporter.summary import classify
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import Inventory
from shared.core.clock import rfc3339


class Status(enum.StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class HealthCheck:
    name: str
    status: Status
    message: str
    critical: bool = False
    """A critical check that is down means the reporter cannot serve (503)."""
    details: dict[str, Any] = field(default_factory=dict)


class HealthSource(Protocol):
    """Extra checks, e.g. the provider chain and the cache, from the carbon library."""

    def checks(self) -> Sequence[HealthCheck]: ...


@runtime_checkable
class _ReportsErrors(Protocol):
    @property
    def last_error(self) -> str | None: ...


def carbon_check(snapshot: CarbonSnapshot, regions: Iterable[str], *, now: datetime) -> HealthCheck:
    """Down when nothing at all is known; degraded when a region is unknown, stale or static."""
    if snapshot.empty:
        return HealthCheck("carbonData", Status.DOWN, "no carbon data yet", critical=True)
    wanted = set(regions)
    found = classify(snapshot, wanted, now=now)
    details = {
        "snapshotTakenAt": rfc3339(snapshot.taken_at),
        "regions": len(wanted),
        "unknownRegions": list(found.unknown),
        "staleRegions": list(found.stale),
        "staticRegions": list(found.static),
    }
    groups = ((found.unknown, "unknown"), (found.stale, "stale"), (found.static, "static"))
    parts = [f"{len(names)} {what}" for names, what in groups if names]
    if parts:
        message = f"regions without live data: {', '.join(parts)}"
        return HealthCheck("carbonData", Status.DEGRADED, message, critical=True, details=details)
    return HealthCheck("carbonData", Status.OK, "live data for every region", True, details)


def kubernetes_check(inventory: Inventory) -> HealthCheck:
    """Down until the first full list; degraded while the watch reports an error."""
    details = {"nodes": len(inventory.nodes), "stellarPods": len(inventory.pods)}
    if not inventory.synced:
        return HealthCheck(
            "kubernetes", Status.DOWN, "node inventory not listed yet", True, details
        )
    error = inventory.last_error if isinstance(inventory, _ReportsErrors) else None
    if error:
        return HealthCheck("kubernetes", Status.DEGRADED, error, True, details)
    return HealthCheck("kubernetes", Status.OK, "inventory in sync", True, details)


def overall(checks: Sequence[HealthCheck]) -> tuple[str, int]:
    """(status, HTTP status): ``unavailable``/503 when a critical check is down."""
    if any(c.critical and c.status is Status.DOWN for c in checks):
        return "unavailable", 503
    if any(c.status is not Status.OK for c in checks):
        return "degraded", 200
    return "ok", 200


def health_json(checks: Sequence[HealthCheck], *, now: datetime) -> tuple[dict[str, Any], int]:
    status, http_status = overall(checks)
    body = {
        "status": status,
        "checkedAt": rfc3339(now),
        "checks": [
            {
                "name": c.name,
                "status": str(c.status),
                "critical": c.critical,
                "message": c.message,
                "details": c.details,
            }
            for c in checks
        ],
    }
    return body, http_status


class RefresherHealth:
    """Refresh, provider and cache checks from ``CarbonRefresher.status()``-shaped documents."""

    def __init__(self, status: Callable[[], Mapping[str, Any]], *, max_age_seconds: float) -> None:
        self._status = status
        self._max_age = max_age_seconds

    def checks(self) -> Sequence[HealthCheck]:
        status = self._status()
        chain = status.get("providers") or {}
        return [
            refresh_check(status, max_age_seconds=self._max_age),
            providers_check(chain.get("providers") or []),
            cache_check(chain.get("cache") or {}),
        ]


def refresh_check(status: Mapping[str, Any], *, max_age_seconds: float) -> HealthCheck:
    """Degraded when the background refresh stopped, failed, or has not completed lately."""
    details = {
        key: status.get(key)
        for key in ("running", "tracked", "known", "lastSuccess", "ageSeconds", "lastError")
    }
    age = status.get("ageSeconds")
    if not status.get("running"):
        return HealthCheck(
            "refresh", Status.DEGRADED, "background refresh not running", False, details
        )
    if status.get("lastError"):
        message = f"last refresh failed: {status['lastError']}"
        return HealthCheck("refresh", Status.DEGRADED, message, False, details)
    if age is None:
        return HealthCheck("refresh", Status.DEGRADED, "no refresh completed yet", False, details)
    if age > max_age_seconds:
        message = f"last refresh {age:.0f} s ago"
        return HealthCheck("refresh", Status.DEGRADED, message, False, details)
    return HealthCheck("refresh", Status.OK, f"refreshed {age:.0f} s ago", False, details)


def providers_check(providers: Sequence[Mapping[str, Any]]) -> HealthCheck:
    """Degraded while a provider backs off after errors; down when every provider does.

    Never critical: the chain's static fallback and the stale cache keep the reporter serving.
    """
    details = {"providers": [dict(p) for p in providers]}
    failing = [str(p.get("name")) for p in providers if p.get("backingOff")]
    if providers and len(failing) == len(providers):
        return HealthCheck("providers", Status.DOWN, "every provider is failing", False, details)
    if failing:
        message = f"backing off after errors: {', '.join(failing)}"
        return HealthCheck("providers", Status.DEGRADED, message, False, details)
    return HealthCheck("providers", Status.OK, "providers answering", False, details)


def cache_check(cache: Mapping[str, Any]) -> HealthCheck:
    details = dict(cache)
    if cache.get("available") is False:
        message = f"cache unavailable: {cache.get('lastError') or 'unknown error'}"
        return HealthCheck("cache", Status.DEGRADED, message, False, details)
    return HealthCheck(
        "cache", Status.OK, f"{cache.get('backend', 'cache')} available", False, details
    )
