"""The HTTP plumbing shared by the providers: Retry-After, timestamps, values, JSON decoding."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import TypeAdapter

from shared.carbon.providers._http import ProviderHttp, parse_retry_after, spacing
from shared.carbon.providers._payload import (
    GramsPerKwh,
    IsoTime,
    Payload,
    PayloadError,
    Percentage,
    parse_payload,
)
from shared.core.errors import BadResponse, ProviderUnavailable
from shared.core.secret import Secret
from tests.unit.carbon.providers.closing import Closing

NOW = datetime(2026, 11, 26, 12, 20, tzinfo=UTC)


def read(kind: Any, value: object) -> object:
    return parse_payload(TypeAdapter(kind), value, "t")


class Reading(Payload):
    carbon_intensity: GramsPerKwh


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("Thu, 26 Nov 2026 12:21:30 GMT", 90.0),
        ("Thu, 26 Nov 2026 12:00:00 GMT", 0.0),
        ("Thursday, 26-Nov-26 12:21:30 GMT", 90.0),  # obsolete RFC 850 form
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_http_date(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header, NOW) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:00:00.000Z",
        "2026-11-26T13:00:00+01:00",
        "2026-11-26T07:00:00.0000000-05:00",
        "2026-11-26T12:00:00",
    ],
)
def test_timestamps_in_any_iso_8601_spelling_are_the_same_utc_instant(text: str) -> None:
    parsed = read(IsoTime, text)

    assert parsed == datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert isinstance(parsed, datetime)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("value", ["2026-11-26", "yesterday", "", None, 1764158400])
def test_anything_but_an_iso_8601_date_time_is_refused(value: object) -> None:
    with pytest.raises(PayloadError):
        read(IsoTime, value)


@pytest.mark.parametrize("value", [None, -0.5, math.nan, math.inf, "12", True, [1]])
def test_an_intensity_must_be_a_known_finite_non_negative_number(value: object) -> None:
    with pytest.raises(PayloadError):
        read(GramsPerKwh, value)


def test_zero_is_a_valid_intensity() -> None:
    assert read(GramsPerKwh, 0) == 0.0


@pytest.mark.parametrize("value", [-1, 100.5, None])
def test_a_percentage_stays_within_0_and_100(value: object) -> None:
    with pytest.raises(PayloadError):
        read(Percentage, value)


def test_a_refused_document_names_the_field_path_and_quotes_the_start_of_the_body() -> None:
    body = {"readings": [{"carbonIntensity": 1}, {"carbonIntensity": -5, "note": "x" * 300}]}

    with pytest.raises(PayloadError) as caught:
        read(dict[str, list[Reading]], body)

    message = str(caught.value)
    assert message.startswith("readings[1].carbonIntensity: is negative (-5); body: {")
    assert message.endswith("…")
    assert len(message) < 200


def test_spacing_is_the_step_between_the_first_two_points() -> None:
    t0 = datetime(2026, 11, 26, tzinfo=UTC)
    assert spacing([t0, t0 + timedelta(minutes=15), t0 + timedelta(hours=5)]) == timedelta(
        minutes=15
    )
    assert spacing([t0]) is None
    assert spacing([t0, t0]) is None


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        ProviderHttp("test", timeout=0)


def test_the_repr_shows_no_secret() -> None:
    http = ProviderHttp("test", secrets=(Secret("s3cr3t-token"),))
    assert "s3cr3t" not in repr(http)
    assert http.scrub("token=s3cr3t-token") == "token=***"


@pytest.mark.parametrize("body", ["NaN", '{"carbonIntensity": Infinity}', "", "<html>"])
async def test_bodies_that_are_not_strict_json_are_bad_responses(
    body: str, closing: Closing
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/doc", answer)
    http = closing(ProviderHttp("test"))
    async with TestServer(app) as server:
        with pytest.raises(BadResponse, match="not JSON"):
            await http.get_json(str(server.make_url("/doc")))


async def test_messages_name_the_path_but_not_the_query_or_credentials_in_the_url(
    closing: Closing,
) -> None:
    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    app = web.Application()
    app.router.add_get("/doc", fail)
    http = closing(ProviderHttp("test"))
    async with TestServer(app) as server:
        url = server.make_url("/doc").with_user("ops").with_password("pa55word")
        with pytest.raises(ProviderUnavailable) as caught:
            await http.get_json(str(url.with_query(key="querysecret")))

    assert str(caught.value) == "test: GET /doc: HTTP 503: maintenance"
