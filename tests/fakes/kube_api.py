"""A fake Kubernetes API server (nodes, pods, namespaces, StatefulSets) speaking the real
list/watch wire format.

It keeps objects with resourceVersions and an event history, answers paginated lists
(``limit``/``continue``) and label selectors, and streams watch events as newline-delimited JSON
(ADDED, MODIFIED, DELETED, BOOKMARK, and ERROR carrying a ``410 Expired`` Status when the requested
version has been compacted away), exactly as kube-apiserver does. Failures (status and
``Retry-After``) can be injected per resource. Nodes take strategic-merge and merge patches of
their labels (recorded with content type and field manager, failures injectable per node), and
core/v1 Events can be created (kept in ``events``). ``node``, ``pod`` and ``read_replica`` build
the manifests tests put into it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from shared.cluster.kube.reflector import WatchSettings

Obj = dict[str, Any]
WAIT = 5.0  # generous upper bound for anything to happen; tests finish as soon as it does


def _truthy(value: str | None) -> bool:
    # kube-apiserver parses booleans with Go's strconv.ParseBool.
    return value in {"1", "t", "T", "true", "TRUE", "True"}


def status_body(code: int, reason: str, message: str) -> Obj:
    """A ``Status`` object, as kube-apiserver sends with every refusal."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _selector_terms(selector: str) -> list[str]:
    """A selector's terms: its commas, except those inside an ``in (...)`` set."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    return [t for t in (*terms, current.strip()) if t]


def _selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    for term in _selector_terms(selector or ""):
        if " notin " in term or " in " in term:
            negated = " notin " in term
            key, rest = term.split(" notin " if negated else " in ", 1)
            values = {v.strip() for v in rest.strip().strip("()").split(",")}
            if (labels.get(key.strip()) in values) == negated:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


WIRE_ONLY = ("kind", "apiVersion")

PATCH_TYPES = frozenset({"application/strategic-merge-patch+json", "application/merge-patch+json"})
"""The patch types the fake applies; JSON patch and server-side apply answer 415 here."""


@dataclass(frozen=True)
class Patch:
    """One PATCH request as the API server received it."""

    name: str
    content_type: str
    field_manager: str | None
    body: Obj


class FakeKubeApi:
    """Objects with resourceVersions, history, compaction and injectable failures."""

    KINDS = {
        "nodes": "Node",
        "pods": "Pod",
        "namespaces": "Namespace",
        "statefulsets": "StatefulSet",
    }
    NAMESPACED = frozenset({"pods", "statefulsets"})

    def __init__(self) -> None:
        self.version = 1000
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {r: {} for r in self.KINDS}
        self.history: dict[str, list[tuple[int, str, Obj]]] = {r: [] for r in self.KINDS}
        self.compacted = dict.fromkeys(self.KINDS, 0)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.fail_next: dict[str, list[tuple[int, str]]] = {r: [] for r in self.KINDS}
        """(status, reason) answers for the next requests on a resource, list or watch."""
        self.retry_after: str | None = None
        """``Retry-After`` sent with injected failures."""
        self.authorizations: list[str | None] = []
        # Only kinds ever watched appear, so tests of nodes and pods compare the dict as it was.
        self.open_watches: defaultdict[str, int] = defaultdict(int, {"nodes": 0, "pods": 0})
        self.patches: list[Patch] = []
        self.fail_patch: dict[str, list[int]] = {}
        """Statuses to answer the next PATCH requests on a node with, by node name."""
        self.events: list[Obj] = []
        self.base_url = ""
        self._changed = asyncio.Condition()
        self._generation = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/nodes", self._nodes)
        app.router.add_patch("/api/v1/nodes/{name}", self._patch_node)
        app.router.add_post("/api/v1/namespaces/{namespace}/events", self._create_event)
        app.router.add_get("/api/v1/pods", self._pods)
        app.router.add_get("/api/v1/namespaces/{namespace}/pods", self._pods)
        app.router.add_get("/api/v1/namespaces", self._namespaces)
        app.router.add_get("/apis/apps/v1/statefulsets", self._statefulsets)
        return app

    # what tests do to the cluster

    async def put(self, resource: str, obj: Obj, *, silently: bool = False) -> None:
        """Create or replace; ``silently`` changes state without an event a watcher could see."""
        obj = copy.deepcopy(obj)
        key = self._key(resource, obj)
        kind = "MODIFIED" if key in self.objects[resource] else "ADDED"
        await self._record(resource, kind, key, obj, silently)

    async def delete(self, resource: str, name: str, namespace: str = "") -> None:
        obj = self.objects[resource][(namespace, name)]
        await self._record(resource, "DELETED", (namespace, name), obj, False)

    async def bookmark(self, resource: str) -> None:
        async with self._changed:
            self.version += 1
            obj = {
                "kind": self.KINDS[resource],
                "apiVersion": "apps/v1" if resource == "statefulsets" else "v1",
                "metadata": {"resourceVersion": str(self.version)},
            }
            self.history[resource].append((self.version, "BOOKMARK", obj))
            self._changed.notify_all()

    async def compact(self, resource: str) -> None:
        """Forget history up to now: watching from an older version gets 410 Gone."""
        self.compacted[resource] = self.version
        self.history[resource].clear()

    async def inject_raw(self, resource: str, line: bytes) -> None:
        """Stream a raw line to watchers, as a broken proxy in between might."""
        async with self._changed:
            self.version += 1
            self.history[resource].append((self.version, "RAW", {"line": line.decode()}))
            self._changed.notify_all()

    async def end_watches(self, resource: str = "nodes") -> None:
        """End every open watch stream (as when timeoutSeconds runs out) once one is open."""
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: self.open_watches[resource] > 0)
            self._generation += 1
            self._changed.notify_all()

    async def shutdown(self) -> None:
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def count(self, path: str, *, watch: bool) -> int:
        return sum(1 for p, q in self.requests if p == path and _truthy(q.get("watch")) == watch)

    # internals

    def _key(self, resource: str, obj: Obj) -> tuple[str, str]:
        meta = obj["metadata"]
        namespaced = resource in self.NAMESPACED
        return (meta.get("namespace", "default") if namespaced else ""), meta["name"]

    async def _record(
        self, resource: str, kind: str, key: tuple[str, str], obj: Obj, silently: bool
    ) -> None:
        async with self._changed:
            self.version += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.version)
            if kind == "DELETED":
                del self.objects[resource][key]
            else:
                self.objects[resource][key] = obj
            if not silently:
                self.history[resource].append((self.version, kind, obj))
            self._changed.notify_all()

    async def _nodes(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "nodes", None)

    async def _patch_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        content_type = request.headers.get("Content-Type", "")
        body = await request.json()
        self.patches.append(Patch(name, content_type, request.query.get("fieldManager"), body))
        if self.fail_patch.get(name):
            status = self.fail_patch[name].pop(0)
            return web.json_response(
                status_body(status, "InternalError", f"injected failure for {name}"),
                status=status,
            )
        if content_type not in PATCH_TYPES:
            message = f"the body of the request was in an unknown format: {content_type}"
            return web.json_response(status_body(415, "UnsupportedMediaType", message), status=415)
        current = self.objects["nodes"].get(("", name))
        if current is None:
            message = f'nodes "{name}" not found'
            return web.json_response(status_body(404, "NotFound", message), status=404)
        patched = copy.deepcopy(current)
        labels = patched["metadata"].setdefault("labels", {})
        for key, value in (body.get("metadata", {}).get("labels") or {}).items():
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
        await self._record("nodes", "MODIFIED", ("", name), patched, False)
        return web.json_response(self.objects["nodes"][("", name)])

    async def _create_event(self, request: web.Request) -> web.Response:
        event = await request.json()
        event.setdefault("metadata", {})["namespace"] = request.match_info["namespace"]
        generate = event["metadata"].pop("generateName", None)
        if generate:
            event["metadata"]["name"] = f"{generate}{len(self.events):05d}"
        self.events.append(event)
        return web.json_response(event, status=201)

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "pods", request.match_info.get("namespace"))

    async def _namespaces(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "namespaces", None)

    async def _statefulsets(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "statefulsets", None)

    async def _serve(
        self, request: web.Request, resource: str, namespace: str | None
    ) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.query)))
        self.authorizations.append(request.headers.get("Authorization"))
        if self.fail_next[resource]:
            status, reason = self.fail_next[resource].pop(0)
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return web.json_response(
                status_body(status, reason, f"injected {reason}"), status=status, headers=headers
            )
        selector = request.query.get("labelSelector")

        def visible(key: tuple[str, str], obj: Obj) -> bool:
            in_namespace = namespace is None or key[0] == namespace
            labels = obj["metadata"].get("labels", {})
            return in_namespace and _selector_matches(selector, labels)

        if _truthy(request.query.get("watch")):
            return await self._watch(request, resource, visible)
        return self._list(request, resource, visible)

    def _list(
        self, request: web.Request, resource: str, visible: Callable[[tuple[str, str], Obj], bool]
    ) -> web.Response:
        items = [o for k, o in sorted(self.objects[resource].items()) if visible(k, o)]
        offset, version = 0, self.version
        if token := request.query.get("continue"):
            state = json.loads(base64.b64decode(token))
            offset, version = state["offset"], state["rv"]
        limit = int(request.query.get("limit", 0)) or len(items)
        page = items[offset : offset + limit]
        metadata: Obj = {"resourceVersion": str(version)}
        if offset + limit < len(items):
            state = {"offset": offset + limit, "rv": version}
            metadata["continue"] = base64.b64encode(json.dumps(state).encode()).decode()
        body = {
            "kind": f"{self.KINDS[resource]}List",
            "apiVersion": "apps/v1" if resource == "statefulsets" else "v1",
            "metadata": metadata,
            # List items carry neither kind nor apiVersion on the wire.
            "items": [{k: v for k, v in o.items() if k not in WIRE_ONLY} for o in page],
        }
        return web.json_response(body)

    async def _watch(
        self,
        request: web.Request,
        resource: str,
        visible: Callable[[tuple[str, str], Obj], bool],
    ) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.version)
        bookmarks = _truthy(request.query.get("allowWatchBookmarks"))
        timeout = float(request.query.get("timeoutSeconds", 1800))
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)

        async def send(kind: str, obj: Obj) -> None:
            await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        if since < self.compacted[resource]:
            message = f"too old resource version: {since} ({self.compacted[resource]})"
            await send("ERROR", status_body(410, "Expired", message))
            return response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._changed:
            generation = self._generation
            self.open_watches[resource] += 1
            self._changed.notify_all()
        # As the API server does for a filtered watch: an object that starts matching is sent as
        # ADDED, one that stops matching as DELETED. What matched is taken from now, not from the
        # version watched from, so a test changes labels only once its watches are open.
        matching = {k for k, o in self.objects[resource].items() if visible(k, o)}
        try:
            while True:
                async with self._changed:
                    pending = [e for e in self.history[resource] if e[0] > since]
                for version, kind, obj in pending:
                    since = version
                    if kind == "RAW":
                        await response.write(obj["line"].encode())
                    elif kind == "BOOKMARK":
                        if bookmarks:
                            await send(kind, obj)
                    else:
                        key = self._key(resource, obj)
                        if kind != "DELETED" and visible(key, obj):
                            await send("MODIFIED" if key in matching else "ADDED", obj)
                            matching.add(key)
                        elif key in matching:
                            await send("DELETED", obj)
                            matching.discard(key)
                async with self._changed:
                    if generation != self._generation:
                        return response
                    if not any(e[0] > since for e in self.history[resource]):
                        remaining = deadline - loop.time()
                        if remaining <= 0:
                            return response
                        try:
                            await asyncio.wait_for(self._changed.wait(), remaining)
                        except TimeoutError:
                            return response
        finally:
            self.open_watches[resource] -= 1


# --- manifests ----------------------------------------------------------------------------------


FAST = WatchSettings(
    watch_timeout_s=30, backoff_initial_s=0.01, backoff_max_s=0.05, request_timeout_s=5
)
"""Watch settings for tests: retries within milliseconds, so failures heal while a test waits."""


@contextlib.asynccontextmanager
async def serving(api: FakeKubeApi | None = None) -> AsyncIterator[FakeKubeApi]:
    """``api`` (a new one by default) on a free loopback port; shut down and closed on exit."""
    api = api or FakeKubeApi()
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    api.base_url = f"http://127.0.0.1:{server.port}"
    try:
        yield api
    finally:
        await api.shutdown()
        await server.close()


def node(
    name: str,
    region: str | None = "us-west-2",
    *,
    provider_id: str | None = None,
    ready: str = "True",
    unschedulable: bool = False,
    taints: Iterable[Obj] = (),
    cpu: str = "7910m",
    labels: dict[str, str] | None = None,
) -> Obj:
    all_labels = {"kubernetes.io/hostname": name, **(labels or {})}
    if region is not None:
        all_labels["topology.kubernetes.io/region"] = region
    spec: Obj = {"providerID": provider_id or f"aws:///{region}a/i-0{name.encode().hex()[:16]}"}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = list(taints)
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": all_labels},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": "31Gi"},
            "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}],
        },
    }


def pod(name: str, namespace: str = "stellar", node_name: str | None = None, **labels: str) -> Obj:
    spec: Obj = {"containers": [{"name": "core", "resources": {"requests": {"cpu": "500m"}}}]}
    if node_name:
        spec["nodeName"] = node_name
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
        "status": {"phase": "Running" if node_name else "Pending"},
    }


def read_replica(name: str, node_name: str | None = None, namespace: str = "stellar") -> Obj:
    return pod(name, namespace, node_name, **{"stellar.org/role": "read-replica"})


def namespace(name: str, **annotations: str) -> Obj:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "annotations": annotations},
        "status": {"phase": "Active"},
    }
