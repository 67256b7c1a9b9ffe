"""The multi-cluster replay's figures: what it reports from emissions and counts, and when it
takes a binding as divided under the weights it wrote."""

from __future__ import annotations

from typing import Any

from bench.karmada_replay import scheduled_with, summarise, verdicts


def _binding(weights: dict[str, int], *, generation: int, observed: int) -> dict[str, Any]:
    entries = [{"targetCluster": {"clusterNames": [n]}, "weight": w} for n, w in weights.items()]
    return {
        "metadata": {"generation": generation},
        "spec": {
            "placement": {"replicaScheduling": {"weightPreference": {"staticWeightList": entries}}}
        },
        "status": {"schedulerObservedGeneration": observed},
    }


def test_a_summary_sets_the_saving_against_equal_weights_and_the_oracle() -> None:
    totals = {"emitted": 300.0, "equal": 1000.0, "oracle": 200.0, "changes": 7.0, "moved": 14.0}

    summary = summarise(totals, hours=168)

    assert summary["reduction_vs_equal"] == 0.7
    assert summary["fraction_of_oracle"] == 0.875
    assert summary["replicas_moved_per_day"] == 2.0
    # One dwell period is one hour: 7 re-divisions in 168 periods.
    assert summary["redivisions_per_dwell"] == round(7 / 168, 4)


def test_the_targets_are_met_from_either_side() -> None:
    met = verdicts(
        {"reduction_vs_equal": 0.5, "fraction_of_oracle": 0.9, "redivisions_per_dwell": 1.0}
    )
    missed = verdicts(
        {"reduction_vs_equal": 0.49, "fraction_of_oracle": None, "redivisions_per_dwell": 1.01}
    )

    assert all(verdict["met"] for verdict in met.values())
    assert not any(verdict["met"] for verdict in missed.values())


def test_a_binding_counts_as_divided_once_the_scheduler_saw_the_written_weights() -> None:
    weights = {"a": 100, "b": 35}

    assert scheduled_with(_binding(weights, generation=4, observed=4), weights)
    assert not scheduled_with(_binding(weights, generation=4, observed=3), weights)
    assert not scheduled_with(_binding({"a": 100, "b": 1}, generation=4, observed=4), weights)
    assert not scheduled_with(None, weights)
