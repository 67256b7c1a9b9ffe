"""One decision end to end through ``admit``: data quality warnings, policies, failures."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo
from shared.core.clock import fixed
from shared.core.models import Freshness
from tests.unit.webhook.builders import (
    NOW,
    THREE_REGIONS,
    apply_and_validate,
    cluster,
    node,
    read_replica_pod,
    review,
    snapshot,
)
from webhook.admission import Admission, Placement, admit
from webhook.review import review_from_dict
from webhook.settings import Policy

REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def decide(
    pod: dict[str, Any] | None,
    *,
    carbon: CarbonSnapshot | None = None,
    nodes: dict[str, NodeInfo] | None = None,
    placement: Placement | None = None,
) -> Admission:
    data = carbon if carbon is not None else snapshot(THREE_REGIONS)
    inventory = nodes if nodes is not None else cluster()
    return admit(
        review_from_dict(review(pod)),
        carbon=lambda: data,
        nodes=lambda: inventory,
        placement=placement or Placement(),
        clock=fixed(NOW),
    )


def test_mutated_admission_carries_the_patch_and_the_ranking() -> None:
    admission = decide(read_replica_pod())

    assert admission.outcome == "mutated"
    assert admission.ranking is not None
    assert admission.ranking.regions == ("us-west-2", "europe-west1", "ap-south-1")
    apply_and_validate(read_replica_pod(), list(admission.patch))


def test_only_eligible_regions_are_ranked() -> None:
    pod = read_replica_pod(spec__nodeSelector={"topology.kubernetes.io/region": "ap-south-1"})

    admission = decide(pod)

    assert admission.ranking is not None
    assert admission.ranking.regions == ("ap-south-1",)
    annotations = apply_and_validate(pod, list(admission.patch))["metadata"]["annotations"]
    assert annotations["stellar.org/carbon-ranking"] == "ap-south-1=650"
    assert "affinity" not in apply_and_validate(pod, list(admission.patch))["spec"]


def test_a_jurisdiction_term_that_allows_only_dirty_regions_is_named_as_the_constraint() -> None:
    # What the operator writes for spec.placement.jurisdiction: a required term on the region label.
    jurisdiction = {
        "nodeAffinity": {
            REQUIRED: {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "topology.kubernetes.io/region",
                                "operator": "In",
                                "values": ["europe-west1", "ap-south-1"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    pod = read_replica_pod(spec__affinity=jurisdiction)

    admission = decide(pod)

    assert admission.outcome == "mutated"
    assert any("excludes greener regions (us-west-2)" in w for w in admission.warnings)
    annotations = apply_and_validate(pod, list(admission.patch))["metadata"]["annotations"]
    assert annotations["stellar.org/carbon-constraint"] == "nodeAffinity"


def test_a_pod_free_to_use_the_greenest_region_names_no_constraint() -> None:
    admission = decide(read_replica_pod())

    annotations = apply_and_validate(read_replica_pod(), list(admission.patch))["metadata"][
        "annotations"
    ]
    assert "stellar.org/carbon-constraint" not in annotations
    assert not any("excludes greener regions" in w for w in admission.warnings)


def test_a_node_selector_on_a_dirtier_region_is_named_too() -> None:
    pod = read_replica_pod(spec__nodeSelector={"topology.kubernetes.io/region": "ap-south-1"})

    admission = decide(pod)

    annotations = apply_and_validate(pod, list(admission.patch))["metadata"]["annotations"]
    assert annotations["stellar.org/carbon-constraint"] == "nodeSelector"


def test_static_data_is_used_and_flagged() -> None:
    carbon = snapshot(
        {
            "us-west-2": (118.0, Freshness.STATIC),
            "europe-west1": (180.0, Freshness.STATIC),
            "ap-south-1": 650.0,
        }
    )

    admission = decide(read_replica_pod(), carbon=carbon)

    assert admission.outcome == "mutated"
    assert admission.warnings == (
        "carbon data is a static annual average for us-west-2, europe-west1",
    )
    patched = apply_and_validate(read_replica_pod(), list(admission.patch))
    assert patched["metadata"]["annotations"]["stellar.org/carbon-source"] == (
        "electricitymaps,static"
    )


def test_missing_data_for_some_regions_is_warned_and_they_are_not_preferred() -> None:
    carbon = snapshot({"us-west-2": 118.0, "europe-west1": 180.0, "ap-south-1": None})

    admission = decide(read_replica_pod(), carbon=carbon)

    assert admission.warnings == ("no carbon data, not ranked: ap-south-1",)
    assert "ap-south-1" not in str(admission.patch)


def test_no_carbon_data_at_all_allows_without_patch_and_warns() -> None:
    admission = decide(read_replica_pod(), carbon=CarbonSnapshot(taken_at=NOW))

    assert admission.outcome == "skipped:no-carbon-data"
    assert admission.patch == ()
    assert admission.response["response"] == {
        "uid": admission.response["response"]["uid"],
        "allowed": True,
        "warnings": [
            "carbon-aware placement skipped: no carbon data for ap-south-1, europe-west1, us-west-2"
        ],
    }


def test_no_node_fitting_the_pod_allows_without_patch_and_warns() -> None:
    pod = read_replica_pod(spec__nodeSelector={"gpu": "h100"})

    admission = decide(pod)

    assert admission.outcome == "skipped:no-eligible-nodes"
    assert admission.patch == ()
    assert admission.warnings[0].startswith("carbon-aware placement skipped: no schedulable node")


def test_require_restricts_to_the_low_carbon_regions() -> None:
    pod = read_replica_pod(metadata__annotations={"stellar.org/carbon-policy": "require"})

    admission = decide(pod)

    affinity = apply_and_validate(pod, list(admission.patch))["spec"]["affinity"]["nodeAffinity"]
    assert affinity[REQUIRED] == {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {
                        "key": "topology.kubernetes.io/region",
                        "operator": "In",
                        "values": ["us-west-2"],
                    }
                ]
            }
        ]
    }


def test_require_with_a_wider_fraction_allows_more_regions() -> None:
    placement = Placement(default_policy=Policy.REQUIRE, low_carbon_fraction=0.6)

    admission = decide(read_replica_pod(), placement=placement)

    affinity = apply_and_validate(read_replica_pod(), list(admission.patch))["spec"]["affinity"]
    values = affinity["nodeAffinity"][REQUIRED]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert values["values"] == ["europe-west1", "us-west-2"]


def test_already_decided_pod_is_skipped_without_patch() -> None:
    first = decide(read_replica_pod())
    patched = apply_and_validate(read_replica_pod(), list(first.patch))

    again = decide(patched)

    assert again.outcome == "skipped:already-decided"
    assert again.patch == ()


def test_unsupported_shape_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    pod = read_replica_pod(spec__tolerations={"key": "x"})

    with caplog.at_level(logging.WARNING, logger="webhook.admission"):
        admission = decide(pod)

    assert admission.outcome == "skipped:unsupported-shape"
    assert admission.patch == ()
    assert "tolerations is dict, expected an array" in admission.warnings[0]
    assert "stellar/mainnet-core-read-* (uid " in caplog.text


def test_a_failing_inventory_is_an_error_that_still_allows() -> None:
    def broken() -> dict[str, NodeInfo]:
        raise KeyError("nodes")

    admission = admit(
        review_from_dict(review(read_replica_pod())),
        carbon=lambda: snapshot(THREE_REGIONS),
        nodes=broken,
        placement=Placement(),
        clock=fixed(NOW),
    )

    assert admission.outcome == "error"
    assert admission.response["response"]["allowed"] is True
    assert "patch" not in admission.response["response"]


def test_many_unranked_regions_are_summarised_in_one_short_warning() -> None:
    regions = {f"region-{i}": None for i in range(9)} | {"us-west-2": 118.0}
    nodes = {f"n{i}": node(f"n{i}", region) for i, region in enumerate(regions)}

    admission = decide(read_replica_pod(), carbon=snapshot(regions), nodes=nodes)

    warning = admission.response["response"]["warnings"][0]
    assert warning.endswith("+5 more")
    assert len(warning) <= 120
