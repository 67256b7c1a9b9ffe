"""A real reporter process on mock carbon data, the demo cluster and three days of recorded history,
and its dashboard as headless Chromium renders it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.browser.dom import Element, parse
from tests.e2e.cluster import free_port
from tests.e2e.probes import http_get, http_json
from tests.e2e.processes import LocalService
from tools.browser import BrowserMissing, find_chromium, rendered_dom
from tools.dashboard_screenshot import seed_history


class Reporter:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def api(self, path: str) -> Any:
        return http_json(f"{self.url}/api/v1/sustainability/{path}")


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        return find_chromium()
    except BrowserMissing as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def reporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reporter]:
    port = free_port()
    history = tmp_path_factory.mktemp("history") / "history.db"
    asyncio.run(seed_history(history, datetime.now(UTC)))
    env = {
        "STELLAR_CARBON_PROVIDERS": "mock,static",
        "STELLAR_CARBON_REPORTER_INVENTORY": "demo",
        "STELLAR_CARBON_REPORTER_HOST": "127.0.0.1",
        "STELLAR_CARBON_REPORTER_PORT": str(port),
        "STELLAR_CARBON_REPORTER_HISTORY_URL": str(history),
    }
    service = LocalService("reporter", "reporter", env, tmp_path_factory.mktemp("reporter"))
    service.start()
    try:
        reporter = Reporter(port)
        service.wait_until(
            "health 200", lambda: http_get(f"{reporter.url}/api/v1/sustainability/health")[0] == 200
        )
        yield reporter
    finally:
        service.stop()


@pytest.fixture(scope="module")
def page(chromium: str, reporter: Reporter) -> Element:
    """The dashboard once its script has loaded everything."""
    return parse(rendered_dom(f"{reporter.url}/"))
