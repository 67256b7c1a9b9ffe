"""What an admission did with a pod, in the words metrics, logs and the preview use.

One vocabulary for every way a request ends: ``mutated``, ``error``, or ``skipped:<reason>`` with a
reason from ``SkipReason``, whether selection passed the pod over or the placement decision found
nothing to do.
"""

from __future__ import annotations

import enum

MUTATED = "mutated"
ERROR = "error"


class SkipReason(enum.StrEnum):
    """Why a request is allowed unchanged; also the ``skipped:<reason>`` metric label."""

    # Selection: the request is not a carbon-aware pod creation.
    NOT_POD = "not-pod"
    NOT_CREATE = "not-create"
    NO_OBJECT = "no-object"
    OPTED_OUT = "opted-out"
    NOT_SELECTED = "not-selected"
    BOUND = "bound"
    MIRROR = "mirror"
    DAEMONSET = "daemonset"
    # Placement: a selected pod that still gets no patch.
    ALREADY_DECIDED = "already-decided"
    NO_ELIGIBLE_NODES = "no-eligible-nodes"
    NO_CARBON_DATA = "no-carbon-data"
    UNSUPPORTED_SHAPE = "unsupported-shape"


def skipped(reason: SkipReason) -> str:
    """The outcome label of a request left unchanged for ``reason``."""
    return f"skipped:{reason.value}"
