"""AdmissionReview parsing and response building."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from tests.unit.webhook.builders import read_replica_pod, review
from webhook.errors import BadReview
from webhook.review import (
    allow,
    build_review,
    decode_patch,
    encode_review,
    parse_review,
    review_from_dict,
)


def test_parsed_request_keeps_what_the_webhook_needs() -> None:
    body = review(read_replica_pod(), uid="abc")
    body["request"]["dryRun"] = True

    request = parse_review(json.dumps(body).encode())

    assert request.uid == "abc"
    assert request.operation == "CREATE"
    assert request.kind == {"group": "", "version": "v1", "kind": "Pod"}
    assert request.namespace == "stellar"
    assert request.dry_run is True
    assert request.display_name == "stellar/mainnet-core-read-*"


def test_response_echoes_the_received_api_version() -> None:
    body = review(read_replica_pod())
    body["apiVersion"] = "admission.k8s.io/v1beta1"

    response = allow(review_from_dict(body))

    assert response["apiVersion"] == "admission.k8s.io/v1beta1"
    assert response["kind"] == "AdmissionReview"


def test_unknown_review_version_is_rejected() -> None:
    body = review(read_replica_pod())
    body["apiVersion"] = "admission.k8s.io/v2"

    with pytest.raises(BadReview, match="unsupported AdmissionReview apiVersion"):
        review_from_dict(body)


def test_patch_is_base64_of_compact_json_with_its_type() -> None:
    request = review_from_dict(review(read_replica_pod()))
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]

    response = allow(request, patch=ops)  # type: ignore[arg-type]

    assert response["response"]["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["response"]["patch"])) == ops
    assert decode_patch(response) == ops


def test_empty_patch_sends_neither_patch_nor_type() -> None:
    response = allow(review_from_dict(review(read_replica_pod())), patch=[])

    assert "patch" not in response["response"]
    assert "patchType" not in response["response"]


def test_warnings_are_single_lines_of_at_most_120_characters() -> None:
    request = review_from_dict(review(read_replica_pod()))

    response = allow(request, warnings=["x" * 300, "two\nlines"])

    warnings = response["response"]["warnings"]
    assert [len(w) for w in warnings] == [120, 9]
    assert warnings[0].endswith("…")
    assert warnings[1] == "two lines"


def test_review_built_for_a_pod_parses_back() -> None:
    pod = read_replica_pod()

    request = review_from_dict(build_review(pod, namespace="stellar", uid="u-1"))

    assert request.object == pod
    assert request.name == "mainnet-core-read-0"
    assert request.operation == "CREATE"


def test_deeply_nested_json_is_a_bad_review_not_a_crash() -> None:
    with pytest.raises(BadReview):
        parse_review(b"[" * 100_000 + b"]" * 100_000)


def utf16(text: str) -> bytes:
    return text.encode("utf-16")


def with_nan(text: str) -> bytes:
    return text.replace('"dryRun": false', '"dryRun": NaN').encode()


def with_lone_surrogate(text: str) -> bytes:
    return text.replace('"uid": "u-1"', '"uid": "u-\\ud800"').encode()


@pytest.mark.parametrize("encode", [utf16, with_nan, with_lone_surrogate])
def test_bodies_the_standard_library_reads_are_still_read(encode: Callable[[str], bytes]) -> None:
    body = encode(json.dumps(review(read_replica_pod(), uid="u-1")))

    request = parse_review(body)

    assert request.uid in ("u-1", "u-\ud800")
    assert request.object == read_replica_pod()


def test_a_response_echoing_a_lone_surrogate_is_still_json() -> None:
    request = parse_review(with_lone_surrogate(json.dumps(review(read_replica_pod(), uid="u-1"))))

    body = encode_review(allow(request, patch=[{"op": "add", "path": "/x", "value": 1}]))

    answer = json.loads(body)
    assert answer["response"]["uid"] == "u-\ud800"
    assert json.loads(base64.b64decode(answer["response"]["patch"])) == [
        {"op": "add", "path": "/x", "value": 1}
    ]


def test_responses_are_compact_utf8_json() -> None:
    request = review_from_dict(review(read_replica_pod(), uid="u-1"))

    body = encode_review(allow(request, warnings=["région sans données"]))

    assert json.loads(body.decode("utf-8"))["response"]["warnings"] == ["région sans données"]
    assert b", " not in body
