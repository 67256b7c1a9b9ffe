"""The admission latency histogram keeps the series ``prometheus_client.Histogram`` exposes."""

from __future__ import annotations

from webhook.metrics import LATENCY_BUCKETS, WebhookMetrics

NAME = "stellar_carbon_webhook_admission_duration_seconds"


def test_latency_on_a_bound_counts_in_that_bucket_and_above() -> None:
    metrics = WebhookMetrics()
    metrics.observe("mutated", 0.001)
    assert metrics.value(f"{NAME}_bucket", {"le": "0.0005"}) == 0.0
    assert metrics.value(f"{NAME}_bucket", {"le": "0.001"}) == 1.0
    assert metrics.value(f"{NAME}_bucket", {"le": "0.1"}) == 1.0
    assert metrics.value(f"{NAME}_bucket", {"le": "+Inf"}) == 1.0


def test_latency_beyond_every_bound_counts_only_in_inf_count_and_sum() -> None:
    metrics = WebhookMetrics()
    metrics.observe("mutated", 0.0001)
    metrics.observe("skipped:disabled", 3.0)
    assert metrics.value(f"{NAME}_bucket", {"le": str(LATENCY_BUCKETS[-1])}) == 1.0
    assert metrics.value(f"{NAME}_bucket", {"le": "+Inf"}) == 2.0
    assert metrics.value(f"{NAME}_count") == 2.0
    assert metrics.value(f"{NAME}_sum") == 3.0001


def test_latency_series_are_exposed_with_a_created_time_and_histogram_type() -> None:
    metrics = WebhookMetrics()
    text = metrics.exposition().decode()
    assert f"# TYPE {NAME} histogram" in text
    assert f"{NAME}_count 0.0" in text
    assert (metrics.value(f"{NAME}_created") or 0.0) > 0.0
