"""Which requests are mutated: opt-in, opt-out, kinds, operations and pods never touched."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.webhook.builders import read_replica_pod, review
from webhook.outcomes import SkipReason
from webhook.review import review_from_dict
from webhook.selection import should_mutate
from webhook.settings import Policy


def decide(pod: dict[str, Any] | None, **kwargs: Any) -> Any:
    default = kwargs.pop("default_policy", Policy.PREFER)
    return should_mutate(review_from_dict(review(pod, **kwargs)), default_policy=default)


def plain_pod(**overrides: Any) -> dict[str, Any]:
    pod = read_replica_pod(**overrides)
    del pod["metadata"]["labels"]["stellar.org/role"]
    return pod


def test_read_replica_label_selects_the_pod() -> None:
    decision = decide(read_replica_pod())

    assert decision.mutate
    assert decision.policy is Policy.PREFER


@pytest.mark.parametrize("value", ["enabled", "true", "True", " enabled "])
def test_opt_in_annotation_selects_any_pod(value: str) -> None:
    assert decide(plain_pod(metadata__annotations={"stellar.org/carbon-aware": value})).mutate


@pytest.mark.parametrize("value", ["disabled", "false", "FALSE"])
def test_opt_out_annotation_wins_over_the_read_replica_label(value: str) -> None:
    decision = decide(read_replica_pod(metadata__annotations={"stellar.org/carbon-aware": value}))

    assert decision.reason is SkipReason.OPTED_OUT


def test_pod_without_label_or_annotation_is_not_selected() -> None:
    assert decide(plain_pod()).reason is SkipReason.NOT_SELECTED


def test_other_roles_are_not_selected() -> None:
    pod = read_replica_pod(metadata__labels={"stellar.org/role": "validator"})

    assert decide(pod).reason is SkipReason.NOT_SELECTED


def test_unknown_opt_in_value_is_ignored_with_a_warning() -> None:
    decision = decide(read_replica_pod(metadata__annotations={"stellar.org/carbon-aware": "yes"}))

    assert decision.mutate
    assert "stellar.org/carbon-aware" in decision.warnings[0]


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE", "CONNECT"])
def test_only_create_is_mutated(operation: str) -> None:
    assert decide(read_replica_pod(), operation=operation).reason is SkipReason.NOT_CREATE


def test_only_pods_are_mutated() -> None:
    assert decide(read_replica_pod(), kind="Deployment").reason is SkipReason.NOT_POD


def test_create_without_object_is_skipped() -> None:
    assert decide(None).reason is SkipReason.NO_OBJECT


def test_bound_pod_is_never_changed() -> None:
    assert decide(read_replica_pod(spec__nodeName="usw2-a")).reason is SkipReason.BOUND


def test_mirror_pod_is_never_changed() -> None:
    pod = read_replica_pod(metadata__annotations={"kubernetes.io/config.mirror": "abc"})

    assert decide(pod).reason is SkipReason.MIRROR


def test_daemonset_pod_is_never_changed() -> None:
    pod = read_replica_pod(
        metadata__ownerReferences=[
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "node-exporter", "uid": "u"}
        ]
    )

    assert decide(pod).reason is SkipReason.DAEMONSET


def test_policy_annotation_overrides_the_default() -> None:
    pod = read_replica_pod(metadata__annotations={"stellar.org/carbon-policy": "require"})

    assert decide(pod).policy is Policy.REQUIRE
    assert decide(read_replica_pod(), default_policy=Policy.REQUIRE).policy is Policy.REQUIRE


def test_invalid_policy_falls_back_to_the_default_with_a_warning() -> None:
    pod = read_replica_pod(metadata__annotations={"stellar.org/carbon-policy": "insist"})

    decision = decide(pod, default_policy=Policy.PREFER)

    assert decision.mutate
    assert decision.policy is Policy.PREFER
    assert decision.warnings == (
        "stellar.org/carbon-policy='insist' is not prefer/require; using prefer",
    )


def test_null_labels_and_annotations_read_as_empty() -> None:
    pod = read_replica_pod(metadata__labels=None, metadata__annotations=None)

    assert decide(pod).reason is SkipReason.NOT_SELECTED
