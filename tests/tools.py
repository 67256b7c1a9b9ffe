"""Locating the control-plane and helm binaries the real-cluster and chart tests use."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "tests" / "e2e" / "controlplane" / "build.sh"


@cache
def tools_bin() -> Path:
    """Directory holding etcd, kube-apiserver, …, helm: $STELLAR_CARBON_BIN or the build script's
    cached output (the script builds what is missing and prints the directory)."""
    env = os.environ.get("STELLAR_CARBON_BIN")
    if env:
        return Path(env)
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(out.splitlines()[-1])
