"""The real descheduler (built with the control plane) with the profile of docs/tiers.md.

``descheduler`` runs it in the background, a cycle every two seconds, for as long as a block
lasts; ``deschedule_once`` runs one cycle (no interval: the descheduler runs once and exits) and
returns what it logged, for the steps where a test wants to know that a cycle ran and moved
nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from tests.e2e.cluster import ControlPlane
from webhook.follow import FOLLOWING_LABEL

FOLLOWERS: Final = {"matchLabels": {FOLLOWING_LABEL: "true"}}
"""The read replicas the webhook gave tier terms."""
EVICTED: Final = "Evicted pod"
"""What the descheduler logs (at ``--v=3``) for every pod it evicted."""


def descheduler_policy(namespace: str) -> dict[str, Any]:
    """docs/tiers.md's profile for ``namespace``, without ``minPodAge`` (the pods are young)."""
    return {
        "apiVersion": "descheduler/v1alpha2",
        "kind": "DeschedulerPolicy",
        "maxNoOfPodsToEvictPerNamespace": 2,
        "profiles": [
            {
                "name": "stellar-carbon-tiers",
                "pluginConfig": [
                    {
                        "name": "DefaultEvictor",
                        "args": {"nodeFit": True, "minReplicas": 2, "labelSelector": FOLLOWERS},
                    },
                    {
                        "name": "RemovePodsViolatingNodeAffinity",
                        "args": {
                            "nodeAffinityType": ["preferredDuringSchedulingIgnoredDuringExecution"],
                            "labelSelector": FOLLOWERS,
                            "namespaces": {"include": [namespace]},
                        },
                    },
                ],
                "plugins": {"deschedule": {"enabled": ["RemovePodsViolatingNodeAffinity"]}},
            }
        ],
    }


def write_policy(path: Path, namespace: str) -> Path:
    path.write_text(json.dumps(descheduler_policy(namespace)))
    return path


def _command(control_plane: ControlPlane, policy: Path, *extra: str) -> list[str]:
    return [
        str(control_plane.binaries.path("descheduler")),
        f"--kubeconfig={control_plane.kubeconfig_path}",
        f"--policy-config-file={policy}",
        "--secure-port=0",
        "--disable-metrics",
        "--v=3",
        *extra,
    ]


@contextlib.asynccontextmanager
async def descheduler(
    control_plane: ControlPlane, policy: Path, log: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The real descheduler, running a cycle every two seconds until the block ends."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - a long-running child, waited for below
            _command(control_plane, policy, "--descheduling-interval=2s"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


async def deschedule_once(control_plane: ControlPlane, policy: Path) -> str:
    """One descheduling cycle to its end; its log. Fails when the descheduler fails."""
    process = await asyncio.create_subprocess_exec(
        *_command(control_plane, policy),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-3000:]
    return text
