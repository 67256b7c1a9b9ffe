"""A fixed inventory read from a file, and the packaged demo cluster ``make run`` shows.

``StaticInventory`` serves the same synchronous interface as ``shared.cluster.kube.KubeInventory``
(and the
same no-op lifecycle), so a service can run against a file instead of a cluster. The file is YAML
or JSON in any of these shapes:

- a Kubernetes ``List`` (``kind: List``, ``NodeList`` or ``PodList``) with ``items``;
- a plain list of manifests;
- a mapping ``{"nodes": [...], "pods": [...]}``;
- several YAML documents (``---``), each one of the above or a single manifest.

Manifests are what ``kubectl get -o yaml`` prints; an item without ``kind`` is taken as a Node.
Nodes and pods go through ``shared.cluster.topology`` and ``shared.cluster.pods`` exactly as watched
objects do, and only Stellar pods (``shared.cluster.pods.pod_role``) are kept.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

import yaml

from shared.cluster.inventory import NodeInfo, PodInfo
from shared.cluster.manifest import ManifestError
from shared.cluster.pods import pod_from_manifest, pod_role
from shared.cluster.topology import node_from_manifest
from shared.core.errors import ConfigError

logger = logging.getLogger(__name__)

DEMO_RESOURCE: Final = "demo-inventory.yaml"
"""File name of the demo cluster inside the ``shared.data`` package."""

_LIST_KINDS: Final = frozenset({"List", "NodeList", "PodList"})


class InventoryFileError(ConfigError):
    """A static inventory file cannot be read; the message names the file and the item."""


class StaticInventory:
    """An inventory that never changes. Implements ``shared.cluster.inventory.Inventory``."""

    def __init__(self, nodes: Iterable[NodeInfo] = (), pods: Iterable[PodInfo] = ()) -> None:
        self._nodes: Mapping[str, NodeInfo] = MappingProxyType({n.name: n for n in nodes})
        self._pods: Mapping[tuple[str, str], PodInfo] = MappingProxyType(
            {(p.namespace, p.name): p for p in pods}
        )

    @property
    def nodes(self) -> Mapping[str, NodeInfo]:
        return self._nodes

    @property
    def pods(self) -> Mapping[tuple[str, str], PodInfo]:
        return self._pods

    @property
    def synced(self) -> bool:
        return True

    @property
    def last_error(self) -> str | None:
        return None

    async def start(self) -> None:
        """Nothing to start; present so services handle every inventory alike."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def wait_synced(self, timeout: float) -> bool:  # noqa: ASYNC109 (same API as KubeInventory)
        return True

    # --- loading --------------------------------------------------------------------------------

    @classmethod
    def from_manifests(
        cls,
        manifests: Iterable[Mapping[str, Any]],
        *,
        extra_region_key: str | None = None,
        source: str = "manifests",
    ) -> StaticInventory:
        """Nodes and Stellar pods from manifests; raises ``InventoryFileError`` naming the item."""
        nodes: dict[str, NodeInfo] = {}
        pods: list[PodInfo] = []
        for index, manifest in enumerate(manifests):
            where = f"{source}: item {index}"
            if not isinstance(manifest, Mapping):
                raise InventoryFileError(f"{where}: expected a Node or Pod manifest")
            kind = manifest.get("kind", "Node")
            try:
                if kind == "Node":
                    node = node_from_manifest(manifest, extra_region_key)
                    if node.name in nodes:
                        raise InventoryFileError(f"{where}: node {node.name} appears twice")
                    nodes[node.name] = node
                elif kind == "Pod":
                    pod = pod_from_manifest(manifest)
                    if pod_role(pod.labels) is None:
                        logger.warning("%s: pod %s is not a Stellar pod, skipped", where, pod.name)
                        continue
                    pods.append(pod)
                else:
                    raise InventoryFileError(f"{where}: kind {kind!r} is neither Node nor Pod")
            except ManifestError as e:
                raise InventoryFileError(f"{where}: {e}") from e
        return cls(nodes.values(), pods)

    @classmethod
    def from_text(
        cls, text: str, *, extra_region_key: str | None = None, source: str = "inventory"
    ) -> StaticInventory:
        """Parse YAML (or JSON, which is YAML too) in any of the shapes the module describes."""
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            raise InventoryFileError(f"{source}: not valid YAML or JSON: {e}") from e
        manifests = list(_manifests(documents, source))
        return cls.from_manifests(manifests, extra_region_key=extra_region_key, source=source)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, extra_region_key: str | None = None
    ) -> StaticInventory:
        """Read an inventory file (YAML or JSON)."""
        source = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise InventoryFileError(f"{source}: cannot read: {e}") from e
        if source.endswith(".json"):
            # Strict JSON first: YAML 1.1 would accept some non-JSON, and the error reads better.
            try:
                json.loads(text)
            except ValueError as e:
                raise InventoryFileError(f"{source}: not valid JSON: {e}") from e
        return cls.from_text(text, extra_region_key=extra_region_key, source=source)


def _manifests(documents: Iterable[Any], source: str) -> Iterator[Mapping[str, Any]]:
    for document in documents:
        if document is None:
            continue
        if isinstance(document, list):
            yield from document
        elif isinstance(document, Mapping) and document.get("kind") in _LIST_KINDS:
            items = document.get("items") or []
            if not isinstance(items, list):
                raise InventoryFileError(f"{source}: items must be a list")
            yield from items
        elif (
            isinstance(document, Mapping)
            and "kind" not in document
            and ("nodes" in document or "pods" in document)
        ):
            for section, kind in (("nodes", "Node"), ("pods", "Pod")):
                items = document.get(section) or []
                if not isinstance(items, list):
                    raise InventoryFileError(f"{source}: {section} must be a list")
                for item in items:
                    yield {"kind": kind, **item} if isinstance(item, Mapping) else item
        elif isinstance(document, Mapping):
            yield document
        else:
            raise InventoryFileError(f"{source}: expected manifests, got {type(document).__name__}")


def demo_inventory(extra_region_key: str | None = None) -> StaticInventory:
    """The packaged demo cluster: nodes in 15 AWS/GCP/Azure regions and a few Stellar pods."""
    text = resources.files("shared.data").joinpath(DEMO_RESOURCE).read_text(encoding="utf-8")
    return StaticInventory.from_text(
        text, extra_region_key=extra_region_key, source=f"shared/data/{DEMO_RESOURCE}"
    )
