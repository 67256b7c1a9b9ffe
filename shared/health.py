"""Readiness shared by every process that serves from the carbon snapshot and the node inventory.

A process is ready once its node inventory has listed and its first carbon refresh produced
data; each service adds its own reasons (the webhook's HTTPS site, its workload watches) to these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import Inventory

logger = logging.getLogger(__name__)


def not_ready_reasons(
    snapshot_source: Callable[[], CarbonSnapshot], inventory: Inventory
) -> list[str]:
    """Why the process cannot serve yet, in words for ``/readyz``; empty when it can."""
    reasons: list[str] = []
    if not inventory.synced:
        reasons.append("node inventory not synced yet")
    try:
        if snapshot_source().empty:
            reasons.append("no carbon data yet")
    except Exception:
        logger.exception("cannot read the carbon snapshot")
        reasons.append("carbon snapshot unreadable")
    return reasons


def readiness_body(reasons: list[str]) -> tuple[dict[str, object], int]:
    """The ``/readyz`` document and its status: 200 when ready, else 503 with the reasons."""
    body: dict[str, object] = {"ready": not reasons}
    if reasons:
        body["reasons"] = reasons
    return body, 503 if reasons else 200
