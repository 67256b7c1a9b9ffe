"""A fake Karmada API server: member Clusters, (Cluster)PropagationPolicies,
(Cluster)ResourceBindings, Leases and Events, speaking the list/watch wire format of
``FakeKubeApi``.

Policies take server-side apply (``PATCH`` with ``application/apply-patch+yaml`` and a
``fieldManager``), modelled for what the controller relies on: a body whose
``metadata.resourceVersion`` is not the current one answers 409 ``Conflict``; ``staticWeightList``
is one atomic field with one owner, and applying it while another manager owns it answers 409 with
a ``FieldManagerConflict`` cause unless ``force=true``; annotations a manager applied before and
leaves out are removed, as is the list when its owner leaves it out; the owner shows in
``metadata.managedFields``. Leases take create and replace with the same optimistic concurrency.
Failures are injectable per request kind.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.kube_api import FakeKubeApi, Obj, _truthy, status_body

APPLY = "application/apply-patch+yaml"
POLICIES = "/apis/policy.karmada.io/v1alpha1"
_WEIGHTS = ("spec", "placement", "replicaScheduling", "weightPreference")
_LIST_FIELD = ".spec.placement.replicaScheduling.weightPreference.staticWeightList"


@dataclass(frozen=True)
class Apply:
    """One server-side apply request as the server received it."""

    resource: str
    namespace: str
    name: str
    content_type: str
    field_manager: str | None
    force: bool
    """``force`` as the API server parses it (Go's ``strconv.ParseBool``)."""
    body: Obj


class FakeKarmadaApi(FakeKubeApi):
    KINDS = {
        "clusters": "Cluster",
        "propagationpolicies": "PropagationPolicy",
        "clusterpropagationpolicies": "ClusterPropagationPolicy",
        "resourcebindings": "ResourceBinding",
        "clusterresourcebindings": "ClusterResourceBinding",
        "leases": "Lease",
    }
    NAMESPACED = frozenset({"propagationpolicies", "resourcebindings", "leases"})

    def __init__(self) -> None:
        super().__init__()
        self.applies: list[Apply] = []
        self.fail_apply: list[int] = []
        """Statuses to answer the next applies with (before any other check)."""
        self.fail_lease: list[int] = []
        self.weight_owner: dict[tuple[str, str, str], str] = {}
        """(resource, namespace, name) → the field manager owning staticWeightList."""
        self._applied_annotations: dict[tuple[str, str, str, str], set[str]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/apis/cluster.karmada.io/v1alpha1/clusters", self._lister("clusters"))
        for plural in ("propagationpolicies", "clusterpropagationpolicies"):
            app.router.add_get(f"{POLICIES}/{plural}", self._lister(plural))
        app.router.add_get(
            f"{POLICIES}/namespaces/{{namespace}}/propagationpolicies/{{name}}", self._get
        )
        app.router.add_get(f"{POLICIES}/clusterpropagationpolicies/{{name}}", self._get)
        app.router.add_patch(
            f"{POLICIES}/namespaces/{{namespace}}/propagationpolicies/{{name}}", self._apply
        )
        app.router.add_patch(f"{POLICIES}/clusterpropagationpolicies/{{name}}", self._apply)
        for plural in ("resourcebindings", "clusterresourcebindings"):
            app.router.add_get(f"/apis/work.karmada.io/v1alpha2/{plural}", self._lister(plural))
        leases = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        app.router.add_get(f"{leases}/{{name}}", self._get_lease)
        app.router.add_put(f"{leases}/{{name}}", self._write_lease)
        app.router.add_post(leases, self._write_lease)
        app.router.add_post("/api/v1/namespaces/{namespace}/events", self._create_event)
        return app

    # what tests do

    def get(self, resource: str, name: str, namespace: str = "") -> Obj:
        return self.objects[resource][(namespace, name)]

    async def edit(self, resource: str, name: str, namespace: str = "", **annotations: str) -> None:
        """A user's change (new resourceVersion), here to annotations."""
        obj = copy.deepcopy(self.get(resource, name, namespace))
        obj["metadata"].setdefault("annotations", {}).update(annotations)
        await self.put(resource, obj)

    # internals

    def _key(self, resource: str, obj: Obj) -> tuple[str, str]:
        meta = obj["metadata"]
        return (meta.get("namespace", "default") if resource in self.NAMESPACED else ""), meta[
            "name"
        ]

    def _lister(self, resource: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, resource, None)

        return handler

    @staticmethod
    def _resource(request: web.Request) -> tuple[str, str, str]:
        namespace = request.match_info.get("namespace", "")
        plural = "propagationpolicies" if namespace else "clusterpropagationpolicies"
        return plural, namespace, request.match_info["name"]

    async def _get(self, request: web.Request) -> web.Response:
        resource, namespace, name = self._resource(request)
        obj = self.objects[resource].get((namespace, name))
        if obj is None:
            return web.json_response(status_body(404, "NotFound", f"{name} not found"), status=404)
        return web.json_response(obj)

    async def _apply(self, request: web.Request) -> web.Response:
        resource, namespace, name = self._resource(request)
        content_type = request.headers.get("Content-Type", "")
        manager = request.query.get("fieldManager")
        force = _truthy(request.query.get("force"))
        body = json.loads(await request.read())
        self.applies.append(Apply(resource, namespace, name, content_type, manager, force, body))
        if self.fail_apply:
            status = self.fail_apply.pop(0)
            return web.json_response(
                status_body(status, "InternalError", "injected"), status=status
            )
        if content_type != APPLY or not manager:
            return web.json_response(
                status_body(415, "UnsupportedMediaType", f"not an apply: {content_type}"),
                status=415,
            )
        current = self.objects[resource].get((namespace, name))
        if current is None:
            return web.json_response(status_body(404, "NotFound", f"{name} not found"), status=404)
        wanted = body.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            message = (
                f'Operation cannot be fulfilled on {resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
            return web.json_response(status_body(409, "Conflict", message), status=409)
        owner_key = (resource, namespace, name)
        owner = self.weight_owner.get(owner_key)
        weights = body
        for step in _WEIGHTS:
            weights = weights.get(step) or {}
        sets_list = "staticWeightList" in weights
        if sets_list and owner not in (None, manager) and not force:
            conflict = status_body(
                409, "Conflict", f'Apply failed with 1 conflict: conflict with "{owner}"'
            )
            conflict["details"] = {
                "causes": [
                    {
                        "type": "FieldManagerConflict",
                        "message": f'conflict with "{owner}"',
                        "field": _LIST_FIELD,
                    }
                ]
            }
            return web.json_response(conflict, status=409)
        patched = copy.deepcopy(current)
        annotations = patched["metadata"].setdefault("annotations", {})
        given = body.get("metadata", {}).get("annotations") or {}
        previous = self._applied_annotations.get((*owner_key, manager), set())
        for key in previous - set(given):
            annotations.pop(key, None)
        annotations.update(given)
        self._applied_annotations[(*owner_key, manager)] = set(given)
        target = patched
        for step in _WEIGHTS:
            target = target.setdefault(step, {})
        if sets_list:
            target["staticWeightList"] = weights["staticWeightList"]
            self.weight_owner[owner_key] = manager
        elif owner == manager:
            target.pop("staticWeightList", None)
            del self.weight_owner[owner_key]
        owner = self.weight_owner.get(owner_key)
        patched["metadata"]["managedFields"] = (
            [
                {
                    "manager": owner,
                    "operation": "Apply",
                    "fieldsV1": {
                        "f:spec": {
                            "f:placement": {
                                "f:replicaScheduling": {
                                    "f:weightPreference": {"f:staticWeightList": {}}
                                }
                            }
                        }
                    },
                }
            ]
            if owner
            else []
        )
        await self.put(resource, patched)
        return web.json_response(self.objects[resource][(namespace, name)])

    async def _get_lease(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        if self.fail_lease:
            status = self.fail_lease.pop(0)
            return web.json_response(
                status_body(status, "InternalError", "injected"), status=status
            )
        lease = self.objects["leases"].get(key)
        if lease is None:
            return web.json_response(status_body(404, "NotFound", "lease not found"), status=404)
        return web.json_response(lease)

    async def _write_lease(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace = request.match_info["namespace"]
        name = request.match_info.get("name") or body["metadata"]["name"]
        body["metadata"]["namespace"] = namespace
        current = self.objects["leases"].get((namespace, name))
        if request.method == "POST" and current is not None:
            return web.json_response(status_body(409, "AlreadyExists", "exists"), status=409)
        if request.method == "PUT":
            if current is None:
                return web.json_response(
                    status_body(404, "NotFound", "lease not found"), status=404
                )
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return web.json_response(status_body(409, "Conflict", "modified"), status=409)
        await self.put("leases", body)
        return web.json_response(self.objects["leases"][(namespace, name)], status=200)
