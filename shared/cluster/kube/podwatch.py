"""Pods narrowed by label selectors on the server: one list + watch per selector, read as one.

A label selector can only AND its requirements, while Stellar pods are recognised by any of
several labels (``shared.cluster.pods``), so ``PodWatch`` runs one ``Reflector`` per selector and
hands out their union. The API server filters each watch, so pods no selector matches are never
sent, decoded or kept: at 150,000 pods of which a few thousand are Stellar's, that is most of the
cost of following pods. A pod that stops matching a selector leaves that watch (the server sends
it as deleted), and stays in the union while another selector still matches it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from shared.cluster.kube.api import RawCall
from shared.cluster.kube.reflector import Reflector, WatchSettings

V = TypeVar("V")

PodKey = tuple[str, str]
"""(namespace, name)."""


def namespaced_key(raw: Mapping[str, Any]) -> PodKey | None:
    metadata = raw.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace") or "default"
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        return None
    return namespace, name


class PodWatch(Generic[V]):
    """The pods any of ``selectors`` matches (every pod when there are none), kept by ``convert``.

    ``list_pods`` is the list call without a selector (all namespaces or one namespace).
    """

    def __init__(
        self,
        list_pods: RawCall,
        selectors: Sequence[str],
        convert: Callable[[Mapping[str, Any]], V | None],
        changed: Callable[[], None],
        settings: WatchSettings,
        rng: random.Random,
    ) -> None:
        self.selectors = tuple(selectors)
        calls = (
            [("pods", list_pods)]
            if not self.selectors
            else [
                (_kind(selector, len(self.selectors)), partial(list_pods, label_selector=selector))
                for selector in self.selectors
            ]
        )
        self.reflectors: tuple[Reflector[PodKey, V], ...] = tuple(
            Reflector(kind, call, namespaced_key, convert, changed, settings, rng)
            for kind, call in calls
        )
        self._union: tuple[tuple[Mapping[PodKey, V], ...], Mapping[PodKey, V]] | None = None

    @property
    def items(self) -> Mapping[PodKey, V]:
        """An immutable snapshot of the union, the same object until a watch changes."""
        if len(self.reflectors) == 1:
            return self.reflectors[0].items
        parts = tuple(r.items for r in self.reflectors)
        union = self._union
        if union is None or any(a is not b for a, b in zip(union[0], parts, strict=True)):
            merged: dict[PodKey, V] = {}
            for part in parts:
                merged.update(part)
            union = self._union = (parts, MappingProxyType(merged))
        return union[1]


def _kind(selector: str, count: int) -> str:
    # Logs, readiness and metrics name each watch; the selector says which one it is.
    return "pods" if count == 1 else f"pods[{selector}]"
