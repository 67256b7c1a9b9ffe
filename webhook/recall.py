"""Whole admission answers, remembered for pods that ask the same question.

The pods of one ReplicaSet arrive as copies of their template: the same labels, annotations,
owner and placement rules; what differs is their uid and what the API server's own admission
plugins add (a service-account token volume with a random name). ``decision_view`` cuts a pod
down to what a placement decision reads. The caller decides on the view, not on the pod, so the
answer can only depend on the view and on the data it was decided with; ``Recall`` hands the
same answer to the next pod with an equal view for as long as that data is the same objects
(node inventory, carbon snapshot, workloads) and the clock is in the same second (the decision is
stamped to the second), and forgets every answer when either moves on.

A pod created with a name of its own (a StatefulSet's pod, a bare pod) has no equals: it is
decided directly, without a view or a key.
"""

from __future__ import annotations

from operator import is_
from typing import Any, Generic, TypeVar

import orjson

from webhook.decisions import Lru

V = TypeVar("V")

METADATA_READ = ("name", "generateName", "labels", "annotations", "ownerReferences")
"""Members of ``metadata`` a decision reads: selection, ownership, pool labels, the patch."""
SPEC_READ = ("nodeName", "affinity", "nodeSelector", "tolerations", "topologySpreadConstraints")
"""Members of ``spec`` a decision reads, besides the containers' resource requests."""

_MISSING = object()

DEFAULT_SIZE = 128
"""Distinct views remembered: the templates of the read pools being scaled at once."""
MAX_KEY_BYTES = 16 * 1024
"""Views larger than this (huge annotations) are decided every time, never remembered, so the
memo holds at most ``DEFAULT_SIZE`` × 16 KiB."""


def decision_view(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` with only what a placement decision reads, every member as it is (wrong types and
    nulls included; a missing member stays missing), the rest left out: a patch built against the
    view applies to the pod."""
    view: dict[str, Any] = {}
    metadata = pod.get("metadata", _MISSING)
    if metadata is not _MISSING:
        view["metadata"] = _pick(metadata, METADATA_READ)
    spec = pod.get("spec", _MISSING)
    if spec is not _MISSING:
        picked = view["spec"] = _pick(spec, SPEC_READ)
        containers = spec.get("containers", _MISSING) if type(spec) is dict else _MISSING
        if containers is not _MISSING:
            picked["containers"] = _requests_only(containers)
    return view


def named(pod: dict[str, Any]) -> bool:
    """Whether ``pod`` is created with a name of its own (a StatefulSet's pod, a bare pod): it
    has no equals to share an answer with, so it is decided without a view or a key. The pods of
    a ReplicaSet, a Job or a DaemonSet have only a ``generateName``."""
    metadata = pod.get("metadata")
    return type(metadata) is dict and bool(metadata.get("name"))


def view_key(namespace: str, view: dict[str, Any]) -> bytes | None:
    """What tells views apart, with the request's namespace (whose pods and settings a decision
    reads); None for a view that is not plain JSON or larger than ``MAX_KEY_BYTES``."""
    try:
        key = orjson.dumps([namespace, view])
    except orjson.JSONEncodeError:
        return None
    return key if len(key) <= MAX_KEY_BYTES else None


class Recall(Generic[V]):
    """Answers by view key, for one era of data.

    ``era`` is what every answer depends on (the node inventory, the snapshot, the decided-at
    second...), ``data`` what one answer depends on besides (a pool pod's workload state); both
    are tuples of objects compared by identity: a new node inventory or snapshot is new data even
    when equal (comparing them would cost more than deciding). A new era forgets every answer, so
    answers live at most until the second turns and hold no older data alive. Not thread-safe:
    the admission path runs on one event loop."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._answers: Lru[bytes, tuple[tuple[object, ...], V]] = Lru(size)
        self._era: tuple[object, ...] = ()

    def get(self, key: bytes, era: tuple[object, ...], data: tuple[object, ...]) -> V | None:
        if not _same(self._era, era):
            return None
        found = self._answers.get(key)
        if found is None or not _same(found[0], data):
            return None
        return found[1]

    def put(self, key: bytes, era: tuple[object, ...], data: tuple[object, ...], answer: V) -> None:
        if not _same(self._era, era):
            self._answers = Lru(self._answers.size)
            self._era = era
        self._answers.put(key, (data, answer))

    def __len__(self) -> int:
        return len(self._answers)


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(map(is_, a, b))


def _pick(value: Any, members: tuple[str, ...]) -> Any:
    if type(value) is not dict:
        return value  # a wrong type (or null) is what the decision sees, and reports
    picked = {}
    for name in members:
        member = value.get(name, _MISSING)
        if member is not _MISSING:
            picked[name] = member
    return picked


def _requests_only(containers: Any) -> Any:
    if type(containers) is not list:
        return containers
    return [
        ({"resources": c["resources"]} if "resources" in c else {}) if type(c) is dict else c
        for c in containers
    ]
