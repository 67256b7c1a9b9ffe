"""The dashboard's page and assets: served by the reporter itself, nothing from elsewhere."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from reporter.dashboard import CONTENT_TYPES
from tests.unit.reporter.conftest import ClientFactory

ASSETS = sorted(CONTENT_TYPES)


async def test_the_root_serves_the_dashboard_page_under_a_strict_content_policy(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    response = await client.get("/")

    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "<title>stellar-carbon" in await response.text()


@pytest.mark.parametrize("name", ASSETS)
async def test_each_asset_is_served_with_its_type(
    reporter_client: ClientFactory, name: str
) -> None:
    client = await reporter_client()
    response = await client.get(f"/dashboard/{name}")

    assert response.status == 200
    assert response.content_type == CONTENT_TYPES[name]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/dashboard/secrets.txt", "/dashboard/..%2Fapp.py", "/index.html"]
)
async def test_anything_else_is_a_json_404(reporter_client: ClientFactory, path: str) -> None:
    client = await reporter_client()
    response = await client.get(path)

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


def test_the_page_loads_nothing_from_another_origin() -> None:
    static = resources.files("reporter") / "static"
    for name in ["index.html", *ASSETS]:
        text = (static / name).read_text()
        # The only absolute URL allowed is the SVG namespace, an identifier that is never fetched.
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'`)]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)
        assert "<script>" not in text, name
        assert "onclick=" not in text, name


def test_every_asset_the_page_references_is_served() -> None:
    page = (resources.files("reporter") / "static" / "index.html").read_text()
    referenced = set(re.findall(r'(?:src|href)="/dashboard/([^"]+)"', page))
    assert referenced == set(ASSETS)
