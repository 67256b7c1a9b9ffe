"""What a person sees on the reporter's dashboard, in a real headless Chromium."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Reporter
from tests.browser.dom import Element

pytestmark = pytest.mark.browser


def _signed_percent(value: float) -> str:
    sign = "+" if value > 0 else "\N{MINUS SIGN}" if value < 0 else ""
    return f"{sign}{abs(value):,.1f} %"


def test_the_page_finishes_loading_with_live_carbon_data(page: Element) -> None:
    assert page.find_all("body")[0].attrs.get("data-loaded") == "true"
    assert page.by_id("freshness").text.startswith("Live carbon data")


def test_every_region_of_the_cluster_is_listed_greenest_first(
    page: Element, reporter: Reporter
) -> None:
    regions = reporter.api("regions")["regions"]
    rows = page.by_id("region-rows").find_all("tr")

    assert sorted(row.attrs["data-region"] for row in rows) == sorted(r["region"] for r in regions)
    ranks = [int(row.attrs["data-rank"]) for row in rows]
    assert ranks == sorted(ranks)
    greenest = min(regions, key=lambda r: r["expectedCarbonIntensity"])
    assert rows[0].attrs["data-rank"] == "1"
    first = next(r for r in regions if r["region"] == rows[0].attrs["data-region"])
    assert first["expectedCarbonIntensity"] == greenest["expectedCarbonIntensity"]
    assert "greenest" in rows[0].attrs.get("class", "")


def test_each_region_shows_its_24_hour_forecast_as_a_line(
    page: Element, reporter: Reporter
) -> None:
    for row in page.by_id("region-rows").find_all("tr"):
        region = row.attrs["data-region"]
        points = reporter.api(f"forecast/{region}?hours=24")["points"]
        (line,) = row.find_all("polyline")
        assert len(line.attrs["points"].split()) == len(points) == 24, region
        heights = {pair.split(",")[1] for pair in line.attrs["points"].split()}
        assert len(heights) > 1, f"{region}: a flat line for a varying forecast"


def test_the_read_replica_savings_figure_is_the_api_s(page: Element, reporter: Reporter) -> None:
    replicas = reporter.api("metrics")["readReplicas"]

    card = page.by_id("replica-savings")
    assert _signed_percent(replicas["savingsPercent"]) in card.text
    assert replicas["baseline"] in card.text


def test_the_table_shows_where_the_read_replicas_run(page: Element, reporter: Reporter) -> None:
    expected: dict[str, int] = {}
    for node in reporter.api("nodes?limit=5000")["nodes"]:
        count = sum(1 for pod in node["pods"] if pod["role"] == "read-replica")
        if count:
            expected[node["region"]] = expected.get(node["region"], 0) + count

    shown = {
        row.attrs["data-region"]: int(cell.attrs["data-read-replicas"])
        for row in page.by_id("region-rows").find_all("tr")
        for cell in row.find_all("td")
        if "data-read-replicas" in cell.attrs
    }
    assert {region: n for region, n in shown.items() if n} == expected
    assert sum(expected.values()) == reporter.api("metrics")["readReplicas"]["total"]


def test_provider_health_is_shown(page: Element, reporter: Reporter) -> None:
    items = page.by_id("provider-list").find_all("li")
    assert items[0].attrs["data-health"] == "ok"
    assert {item.attrs.get("data-provider") for item in items[1:]} == {"mock", "static"}


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_each_period_shows_the_recorded_emissions_and_savings_of_the_report(
    page: Element, reporter: Reporter, period: str
) -> None:
    card = page.by_id(f"history-{period}")
    report = reporter.api(f"report?from={card.attrs['data-from']}&to={card.attrs['data-to']}")

    assert float(card.attrs["data-kgco2eq"]) == report["totals"]["locationKgCO2eq"]
    assert report["totals"]["locationKgCO2eq"] > 0
    saved = report["readReplicas"]["savingsKgCO2eq"]
    assert float(card.attrs["data-savings-kgco2eq"]) == saved
    assert f"read replicas saved {saved:,.2f} kg" in card.text
    assert "no history yet" not in card.text


def test_a_longer_period_holds_at_least_the_emissions_of_a_shorter_one(page: Element) -> None:
    day, week = page.by_id("history-day"), page.by_id("history-week")

    assert float(week.attrs["data-kgco2eq"]) > float(day.attrs["data-kgco2eq"])
