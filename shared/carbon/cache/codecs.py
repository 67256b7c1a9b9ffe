"""How cached values are written: explicit JSON documents, never pickle.

Each kind of entry (current intensity, forecast) has an encoder and a decoder; a failed fetch is
written too, so that replicas waiting on the one that called upstream learn why it failed instead
of calling themselves. Decoders raise ``KeyError``, ``TypeError`` or ``ValueError`` on a document
they cannot read; the store treats that as a miss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownZone,
    truncate,
)
from shared.core.models import Forecast, ForecastPoint, Freshness, Intensity, Provenance

T = TypeVar("T", Intensity, Forecast)


def provenance_to_dict(provenance: Provenance) -> dict[str, Any]:
    return {
        "provider": provenance.provider,
        "fetchedAt": provenance.fetched_at.isoformat(),
        "freshness": provenance.freshness.value,
        "fallbackFrom": list(provenance.fallback_from),
    }


def provenance_from_dict(data: Mapping[str, Any]) -> Provenance:
    return Provenance(
        provider=str(data["provider"]),
        fetched_at=parse_time(data["fetchedAt"]),
        freshness=Freshness(data["freshness"]),
        fallback_from=tuple(str(name) for name in data["fallbackFrom"]),
    )


def intensity_to_dict(intensity: Intensity) -> dict[str, Any]:
    return {
        "zone": intensity.zone,
        "gPerKwh": intensity.g_per_kwh,
        "observedAt": intensity.observed_at.isoformat(),
        "provenance": provenance_to_dict(intensity.provenance),
        "estimated": intensity.estimated,
        "renewablePct": intensity.renewable_pct,
    }


def intensity_from_dict(data: Mapping[str, Any]) -> Intensity:
    renewable = data["renewablePct"]
    return Intensity(
        zone=str(data["zone"]),
        g_per_kwh=float(data["gPerKwh"]),
        observed_at=parse_time(data["observedAt"]),
        provenance=provenance_from_dict(data["provenance"]),
        estimated=bool(data["estimated"]),
        renewable_pct=None if renewable is None else float(renewable),
    )


def forecast_to_dict(forecast: Forecast) -> dict[str, Any]:
    return {
        "zone": forecast.zone,
        "generatedAt": forecast.generated_at.isoformat(),
        "points": [
            {
                "startsAt": point.starts_at.isoformat(),
                "gPerKwh": point.g_per_kwh,
                "durationSeconds": point.duration.total_seconds(),
            }
            for point in forecast.points
        ],
        "provenance": provenance_to_dict(forecast.provenance),
    }


def forecast_from_dict(data: Mapping[str, Any]) -> Forecast:
    return Forecast(
        zone=str(data["zone"]),
        generated_at=parse_time(data["generatedAt"]),
        points=tuple(
            ForecastPoint(
                starts_at=parse_time(point["startsAt"]),
                g_per_kwh=float(point["gPerKwh"]),
                duration=timedelta(seconds=float(point["durationSeconds"])),
            )
            for point in data["points"]
        ),
        provenance=provenance_from_dict(data["provenance"]),
    )


def parse_time(value: Any) -> datetime:
    """A stored timestamp; a naive one is refused, as every time in the library is aware."""
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError("naive timestamp in a cache entry")
    return moment


@dataclass(frozen=True, slots=True)
class EntryKind(Generic[T]):
    """What a key holds (current intensity or forecast) and how it is written as JSON."""

    name: str
    encode: Callable[[T], dict[str, Any]]
    decode: Callable[[Mapping[str, Any]], T]


CURRENT: EntryKind[Intensity] = EntryKind("current", intensity_to_dict, intensity_from_dict)
FORECAST: EntryKind[Forecast] = EntryKind("forecast", forecast_to_dict, forecast_from_dict)


# Errors a failed fetch is shared as, between processes waiting on the same lock.
_SHARED_ERRORS: dict[str, type[ProviderError]] = {
    cls.__name__: cls
    for cls in (ProviderUnavailable, ProviderAuthError, BadResponse, UnknownZone, NoForecast)
}


def failure_to_dict(error: ProviderError, token: str) -> dict[str, Any]:
    """``error`` as the lock holder ``token`` reports it to the replicas waiting for it."""
    message = str(error).removeprefix(f"{error.provider}: ")
    return {
        "token": token,
        "type": type(error).__name__,
        "provider": error.provider,
        "message": truncate(message),
        "retryAfter": error.retry_after if isinstance(error, RateLimited) else None,
    }


def failure_from_dict(data: Mapping[str, Any]) -> ProviderError:
    provider, message = str(data["provider"]), str(data["message"])
    if data["type"] == RateLimited.__name__:
        retry_after = data["retryAfter"]
        return RateLimited(provider, message, None if retry_after is None else float(retry_after))
    return _SHARED_ERRORS.get(str(data["type"]), ProviderUnavailable)(provider, message)
