"""Where a component's node inventory comes from; each component states which sources it takes."""

from __future__ import annotations

import enum


class InventorySource(enum.StrEnum):
    KUBERNETES = "kubernetes"  # list+watch: the pod's service account, else a kubeconfig file
    FILE = "file"  # a static YAML/JSON node list, for demos and tests
    DEMO = "demo"  # the built-in demo inventory
