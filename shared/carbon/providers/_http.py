"""HTTP plumbing shared by the HTTP carbon providers.

One ``ProviderHttp`` per provider owns (or borrows) an aiohttp session, applies a per-request
timeout, and turns transport failures and status codes into the ``shared.core.errors`` tree. What
the decoded documents must contain is ``_payload``'s concern.

Credentials never leave this module in readable form: every upstream body or transport message
that ends up in an error is scrubbed of the provider's secrets and truncated.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

from shared.core.clock import Clock, utcnow
from shared.core.errors import (
    BadResponse,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnknownZone,
    truncate,
)
from shared.core.secret import Secret

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
"""Seconds one request may take, connection included."""

_MAX_BODY_BYTES = 4 * 1024 * 1024
"""Carbon documents are small; anything bigger is a misconfigured URL, not data."""

StatusHook = Callable[[int, str], ProviderError | None]
"""Provider-specific reading of a non-200 answer: ``(status, scrubbed body) -> error or None``.

None falls through to the generic mapping in ``ProviderHttp``.
"""


class ProviderHttp:
    """The HTTP side of one provider: session lifetime, timeouts, status → error mapping."""

    def __init__(
        self,
        provider: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = utcnow,
        secrets: Sequence[Secret] = (),
    ) -> None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._provider = provider
        self._timeout_s = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        return f"ProviderHttp(provider={self._provider!r}, timeout={self._timeout_s})"

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this provider replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret.reveal(), "***")
        return text

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        on_status: StatusHook | None = None,
    ) -> object:
        """GET ``url`` and decode its JSON body, or raise the matching ``ProviderError``."""
        # Only the path goes into messages: the host may carry userinfo, the query a key.
        where = URL(url).path or "/"
        session = self._ensure_session()
        try:
            async with session.get(
                url, params=params, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                raw = await _read_capped(response)
        except TimeoutError as e:
            raise ProviderUnavailable(
                self._provider, f"GET {where}: no answer within {self._timeout_s:g} s"
            ) from e
        except aiohttp.ClientError as e:
            detail = self.scrub(str(e)) or type(e).__name__
            raise ProviderUnavailable(self._provider, f"GET {where}: {truncate(detail)}") from e
        if len(raw) > _MAX_BODY_BYTES:
            raise BadResponse(self._provider, f"GET {where}: body larger than {_MAX_BODY_BYTES} B")
        text = self.scrub(raw.decode("utf-8", errors="replace"))
        logger.debug("%s: GET %s -> %d (%d B)", self._provider, where, status, len(raw))

        if status != 200:
            hooked = on_status(status, text) if on_status is not None else None
            if hooked is not None:
                raise hooked
            if not 200 <= status < 300:
                raise self._status_error(status, text, retry_after, where)
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError as e:
            raise BadResponse(
                self._provider, f"GET {where}: HTTP {status} body is not JSON: {truncate(text)!r}"
            ) from e

    def _status_error(
        self, status: int, text: str, retry_after: str | None, where: str
    ) -> ProviderError:
        message = f"GET {where}: HTTP {status}: {truncate(text)}"
        if status in (401, 403):
            return ProviderAuthError(self._provider, message)
        if status == 404:
            return UnknownZone(self._provider, message)
        if status == 429:
            return RateLimited(
                self._provider, message, parse_retry_after(retry_after, self._clock())
            )
        if status >= 500 or status == 408:
            return ProviderUnavailable(self._provider, message)
        return BadResponse(self._provider, message)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            # trust_env: honour HTTPS_PROXY/NO_PROXY, as egress in clusters often needs.
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=True)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        """Close the session if this object created it; an injected one belongs to the caller."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first ``_MAX_BODY_BYTES + 1`` bytes when it is larger."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            break
    return b"".join(chunks)


def _reject_constant(name: str) -> float:
    # json.loads accepts NaN/Infinity by default; no carbon value can be either.
    raise ValueError(f"{name} is not a number")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # RFC 9110 dates are GMT
    return max(0.0, (when - now).total_seconds())


def spacing(times: Iterable[datetime]) -> timedelta | None:
    """Time between the first two points, when there are two and they are strictly increasing."""
    first_two = []
    for at in times:
        first_two.append(at)
        if len(first_two) == 2:
            step = first_two[1] - first_two[0]
            return step if step > timedelta(0) else None
    return None
