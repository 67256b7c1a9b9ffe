"""The HTTPS admission endpoint and the health app, against real servers on loopback."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from shared.cluster.demo import StaticInventory
from shared.core.models import Freshness
from tests.unit.webhook.builders import (
    THREE_REGIONS,
    apply_and_validate,
    read_replica_pod,
    review,
    snapshot,
)
from tests.unit.webhook.conftest import Webhook
from webhook.review import decode_patch

ANNOTATION = "stellar.org/carbon-ranking"


async def post(webhook: Webhook, body: Any, *, query: str = "") -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with webhook.session.post(
        webhook.url + query,
        # Large bodies as a stream, as aiohttp asks, so the client does not block the loop.
        data=io.BytesIO(data) if len(data) > 1024 * 1024 else data,
        headers={"Content-Type": "application/json"},
    ) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def test_read_replica_pod_gets_a_patch_that_applies(webhook: Webhook) -> None:
    pod = read_replica_pod()
    request = review(pod, uid="705ab4f5-6393-11e8-b7cc-42010a800002")

    status, body = await post(webhook, request)

    assert status == 200
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    patched = apply_and_validate(pod, decode_patch(body))
    assert patched["metadata"]["annotations"][ANNOTATION].startswith("us-west-2=118,")
    assert "warnings" not in response
    assert webhook.metrics.admissions_count("mutated") == 1


async def test_the_timeout_query_the_api_server_appends_is_accepted(webhook: Webhook) -> None:
    status, body = await post(webhook, review(read_replica_pod()), query="?timeout=2s")

    assert status == 200
    assert body["response"]["patchType"] == "JSONPatch"


async def test_unselected_pod_is_allowed_without_patch(webhook: Webhook) -> None:
    pod = read_replica_pod(metadata__labels={"app": "web"})

    status, body = await post(webhook, review(pod))

    assert status == 200
    assert body["response"] == {"uid": body["response"]["uid"], "allowed": True}
    assert webhook.metrics.admissions_count("skipped:not-selected") == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"{not json", "malformed JSON", id="malformed-json"),
        pytest.param(b"\xff\xfe", "malformed JSON", id="not-utf8"),
        pytest.param([1, 2], "not an AdmissionReview", id="array"),
        pytest.param(
            {"kind": "Pod", "apiVersion": "v1"}, "not an AdmissionReview", id="wrong-kind"
        ),
        pytest.param(
            {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"},
            "request is missing",
            id="no-request",
        ),
        pytest.param(
            {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}},
            "missing request.uid",
            id="no-uid",
        ),
        pytest.param(
            {
                "kind": "AdmissionReview",
                "apiVersion": "admission.k8s.io/v1",
                "request": {"uid": "u", "kind": "Pod", "operation": "CREATE"},
            },
            "request.kind must be an object",
            id="kind-shape",
        ),
        pytest.param(
            {
                "kind": "AdmissionReview",
                "apiVersion": "admission.k8s.io/v1",
                "request": {
                    "uid": "u",
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "operation": "CREATE",
                    "object": "pod",
                },
            },
            "request.object must be an object",
            id="object-shape",
        ),
    ],
)
async def test_malformed_input_gets_400_with_a_one_line_reason(
    webhook: Webhook, body: Any, reason: str
) -> None:
    status, answer = await post(webhook, body)

    assert status == 400
    assert answer["error"]["code"] == "bad_review"
    assert reason in answer["error"]["message"]
    assert "\n" not in answer["error"]["message"]
    assert webhook.metrics.admissions_count("error") == 0


async def test_a_two_mebibyte_pod_is_accepted(webhook: Webhook) -> None:
    pod = read_replica_pod()
    pod["spec"]["containers"][0]["env"] = [{"name": "BLOB", "value": "x" * (2 * 1024 * 1024)}]
    request = review(pod)
    assert len(json.dumps(request)) > 2 * 1024 * 1024

    status, body = await post(webhook, request)

    assert status == 200
    assert body["response"]["patchType"] == "JSONPatch"


async def test_a_body_over_the_limit_is_refused(webhook: Webhook) -> None:
    status, _ = await post(webhook, b" " * (9 * 1024 * 1024))

    assert status == 413


async def test_an_internal_error_allows_the_pod_unchanged_and_is_counted(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.carbon.failure = RuntimeError("snapshot exploded")
    request = review(read_replica_pod(metadata__name=None), uid="uid-err-1")

    with caplog.at_level(logging.ERROR, logger="webhook.admission"):
        status, body = await post(webhook, request)

    assert status == 200
    response = body["response"]
    assert response["allowed"] is True
    assert "patch" not in response
    assert "patchType" not in response
    assert response["warnings"] == [
        "carbon-aware placement failed internally; pod admitted unchanged"
    ]
    assert webhook.metrics.admissions_count("error") == 1
    assert "stellar/mainnet-core-read-*" in caplog.text
    assert "uid-err-1" in caplog.text


async def test_without_any_carbon_data_the_pod_is_allowed_without_patch_and_warned(
    webhook: Webhook,
) -> None:
    webhook.carbon.current = snapshot({region: None for region in THREE_REGIONS})

    status, body = await post(webhook, review(read_replica_pod()))

    assert status == 200
    assert "patch" not in body["response"]
    assert body["response"]["warnings"] == [
        "carbon-aware placement skipped: no carbon data for ap-south-1, europe-west1, us-west-2"
    ]
    assert webhook.metrics.admissions_count("skipped:no-carbon-data") == 1


async def test_stale_data_still_mutates_and_says_so(webhook: Webhook) -> None:
    webhook.carbon.current = snapshot(
        {"us-west-2": (118.0, Freshness.STALE), "europe-west1": 180.0, "ap-south-1": None}
    )

    _, body = await post(webhook, review(read_replica_pod()))

    assert body["response"]["patchType"] == "JSONPatch"
    assert body["response"]["warnings"] == [
        "carbon data is stale (last good values) for us-west-2",
        "no carbon data, not ranked: ap-south-1",
    ]


async def test_get_on_mutate_is_not_allowed(webhook: Webhook) -> None:
    async with webhook.session.get(webhook.url) as response:
        assert response.status == 405


async def test_healthz_answers_while_the_process_runs(webhook: Webhook) -> None:
    async with webhook.session.get(webhook.health_url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_readyz_needs_carbon_data(webhook: Webhook) -> None:
    async with webhook.session.get(webhook.health_url + "/readyz") as response:
        assert response.status == 200

    webhook.carbon.current = snapshot({"us-west-2": None})
    async with webhook.session.get(webhook.health_url + "/readyz") as response:
        assert response.status == 503
        assert await response.json() == {"ready": False, "reasons": ["no carbon data yet"]}


async def test_readyz_needs_a_synced_inventory() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from shared.core.clock import utcnow
    from webhook.app import create_health_app
    from webhook.metrics import WebhookMetrics

    class Unsynced(StaticInventory):
        @property
        def synced(self) -> bool:
            return False

    app = create_health_app(
        snapshot_source=lambda: snapshot(THREE_REGIONS),
        inventory=Unsynced(),
        clock=utcnow,
        metrics=WebhookMetrics(),
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert await response.json() == {
            "ready": False,
            "reasons": ["node inventory not synced yet"],
        }


async def test_readyz_waits_for_the_https_site() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from shared.core.clock import utcnow
    from webhook.app import create_health_app
    from webhook.metrics import WebhookMetrics

    https_up = False
    app = create_health_app(
        snapshot_source=lambda: snapshot(THREE_REGIONS),
        inventory=StaticInventory(),
        clock=utcnow,
        metrics=WebhookMetrics(),
        serving=lambda: https_up,
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert await response.json() == {"ready": False, "reasons": ["HTTPS site not serving yet"]}
        https_up = True
        response = await client.get("/readyz")
        assert response.status == 200


async def test_metrics_expose_outcomes_latency_data_age_and_nodes(webhook: Webhook) -> None:
    await post(webhook, review(read_replica_pod()))
    await post(webhook, review(read_replica_pod(metadata__labels={})))

    async with webhook.session.get(webhook.health_url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()

    assert 'stellar_carbon_webhook_admissions_total{outcome="mutated"} 1.0' in text
    assert 'stellar_carbon_webhook_admissions_total{outcome="skipped:not-selected"} 1.0' in text
    assert 'stellar_carbon_webhook_admission_duration_seconds_bucket{le="0.0005"}' in text
    assert 'stellar_carbon_webhook_admission_duration_seconds_bucket{le="0.1"}' in text
    assert "stellar_carbon_webhook_admission_duration_seconds_count 2.0" in text
    # The test clock and the snapshot are both pinned to the same instant.
    assert "stellar_carbon_webhook_carbon_data_age_seconds 0.0" in text
    assert "stellar_carbon_webhook_inventory_nodes 4.0" in text


async def test_readyz_waits_for_the_workload_watches_and_metrics_show_them() -> None:
    import time

    from aiohttp.test_utils import TestClient, TestServer

    from shared.cluster.workloads import WatchStats
    from shared.core.clock import utcnow
    from webhook.app import create_health_app
    from webhook.metrics import WebhookMetrics

    now = time.monotonic()
    watches = [
        WatchStats("statefulsets", 2, True, now - 5),
        WatchStats("namespaces", 0, False, None),
        WatchStats("pods", 0, False, None),
    ]
    app = create_health_app(
        snapshot_source=lambda: snapshot(THREE_REGIONS),
        inventory=StaticInventory(),
        clock=utcnow,
        metrics=WebhookMetrics(),
        watches=lambda: watches,
    )
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert response.status == 503
        assert await response.json() == {
            "ready": False,
            "reasons": ["workload watches not synced yet: namespaces, pods"],
        }
        watches[1:] = [WatchStats("namespaces", 3, True, now), WatchStats("pods", 7, True, now)]
        response = await client.get("/readyz")
        assert response.status == 200
        text = await (await client.get("/metrics")).text()

    assert 'stellar_carbon_webhook_workload_objects{resource="statefulsets"} 2.0' in text
    assert 'stellar_carbon_webhook_workload_objects{resource="pods"} 7.0' in text
    ages = {
        line.split("{")[1].split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("stellar_carbon_webhook_workload_watch_age_seconds{")
    }
    assert ages.keys() == {"statefulsets", "namespaces", "pods"}
    assert ages["statefulsets"] >= 5.0
    assert "stellar_carbon_webhook_restricted_pods_unschedulable 0.0" in text
    assert "stellar_carbon_webhook_restricted_pods_stranded_total 0.0" in text


async def test_a_body_that_claims_gzip_but_is_not_gets_a_400_naming_the_encoding(
    webhook: Webhook,
) -> None:
    async with webhook.session.post(
        webhook.url,
        data=b"not gzip at all",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ) as response:
        body = await response.json()

    assert response.status == 400
    assert "Content-Encoding" in body["error"]["message"]
    assert "gzip" in body["error"]["message"]


@pytest.mark.parametrize("levels", [1_000, 3_000, 20_000])
async def test_json_nested_thousands_deep_gets_a_one_line_400(
    webhook: Webhook, levels: int
) -> None:
    deep = b'{"a":[' * (levels // 2) + b"1" + b"]}" * (levels // 2)
    text = b'{"apiVersion":"admission.k8s.io/v1","kind":' + deep + b',"request":{}}'
    async with webhook.session.post(
        webhook.url, data=text, headers={"Content-Type": "application/json"}
    ) as response:
        body = await response.json()

    assert response.status == 400
    assert body["error"]["code"] == "bad_review"
    assert "\n" not in body["error"]["message"]
