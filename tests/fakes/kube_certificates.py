"""A fake Kubernetes API server for the webhook's certificates: Secrets and webhook configurations.

Speaks the real wire format (Status bodies, resourceVersion conflicts on PUT and on a merge patch
that names a version, 409 on a duplicate create, JSON patch with ``test`` operations failing as
422, a list and a watch of webhook configurations by ``metadata.name`` field selector) so the
certificate management is exercised through the real ``kubernetes_asyncio`` client.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jsonpatch
from aiohttp import web
from aiohttp.test_utils import TestServer
from kubernetes_asyncio.client import ApiClient, Configuration

from tests.fakes.kube_api import status_body

WEBHOOKS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
WATCH_SECONDS = 2.0


def status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(status_body(code, reason, message), status=code)


def webhook_configuration(name: str, *webhooks: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name, "resourceVersion": "1"},
        "webhooks": [
            {
                "name": hook,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Ignore",
                "clientConfig": {
                    "service": {"namespace": "stellar-carbon", "name": "stellar-carbon-webhook"}
                },
            }
            for hook in webhooks
        ],
    }


class FakeKube:
    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.configurations: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self._versions = itertools.count(100)
        self.app = web.Application()
        secret = "/api/v1/namespaces/{namespace}/secrets"
        self.app.router.add_get(secret + "/{name}", self.read_secret)
        self.app.router.add_post(secret, self.create_secret)
        self.app.router.add_put(secret + "/{name}", self.replace_secret)
        self.app.router.add_patch(secret + "/{name}", self.patch_secret)
        self.app.router.add_get(WEBHOOKS, self.list_configurations)
        self.app.router.add_get(WEBHOOKS + "/{name}", self.read_configuration)
        self.app.router.add_patch(WEBHOOKS + "/{name}", self.patch_configuration)
        self._watchers: list[tuple[str, asyncio.Queue[dict[str, Any]]]] = []

    def _version(self) -> str:
        return str(next(self._versions))

    async def read_secret(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        self.calls.append(f"GET secret {key[1]}")
        if key not in self.secrets:
            return status(404, "NotFound", f'secrets "{key[1]}" not found')
        return web.json_response(self.secrets[key])

    async def create_secret(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = (request.match_info["namespace"], body["metadata"]["name"])
        self.calls.append(f"POST secret {key[1]}")
        if key in self.secrets:
            return status(409, "AlreadyExists", f'secrets "{key[1]}" already exists')
        body["metadata"]["resourceVersion"] = self._version()
        self.secrets[key] = body
        return web.json_response(body, status=201)

    async def replace_secret(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = (request.match_info["namespace"], request.match_info["name"])
        self.calls.append(f"PUT secret {key[1]}")
        current = self.secrets.get(key)
        if current is None:
            return status(404, "NotFound", f'secrets "{key[1]}" not found')
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            return status(409, "Conflict", "the object has been modified")
        body["metadata"]["resourceVersion"] = self._version()
        self.secrets[key] = body
        return web.json_response(body)

    async def patch_secret(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        self.calls.append(f"PATCH secret {key[1]}")
        if request.content_type != "application/merge-patch+json":
            return status(415, "UnsupportedMediaType", request.content_type)
        current = self.secrets.get(key)
        if current is None:
            return status(404, "NotFound", f'secrets "{key[1]}" not found')
        patch = await request.json()
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            return status(409, "Conflict", "the object has been modified")
        patched = copy.deepcopy(current)
        patched.setdefault("data", {}).update(patch.get("data") or {})
        patched["metadata"]["resourceVersion"] = self._version()
        self.secrets[key] = patched
        return web.json_response(patched)

    def change_configuration(self, name: str, configuration: dict[str, Any] | None) -> None:
        """Store (or with None delete) a configuration as someone else would, telling watchers."""
        if configuration is None:
            removed = self.configurations.pop(name)
            self._notify("DELETED", removed)
            return
        configuration = copy.deepcopy(configuration)
        configuration["metadata"]["resourceVersion"] = self._version()
        kind = "MODIFIED" if name in self.configurations else "ADDED"
        self.configurations[name] = configuration
        self._notify(kind, configuration)

    def _notify(self, kind: str, configuration: dict[str, Any]) -> None:
        for name, queue in self._watchers:
            if name == configuration["metadata"]["name"]:
                queue.put_nowait({"type": kind, "object": copy.deepcopy(configuration)})

    async def list_configurations(self, request: web.Request) -> web.StreamResponse:
        selector = request.query.get("fieldSelector", "")
        if not selector.startswith("metadata.name="):
            return status(403, "Forbidden", "only one configuration, by name, may be read")
        name = selector.removeprefix("metadata.name=")
        if request.query.get("watch") not in ("1", "t", "T", "true", "TRUE", "True"):
            self.calls.append(f"LIST config {name}")
            items = [self.configurations[name]] if name in self.configurations else []
            return web.json_response(
                {
                    "kind": "MutatingWebhookConfigurationList",
                    "metadata": {"resourceVersion": self._version()},
                    "items": items,
                }
            )
        self.calls.append(f"WATCH config {name}")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._watchers.append((name, queue))
        response = web.StreamResponse()
        await response.prepare(request)
        # Like kube-apiserver at timeoutSeconds, the fake ends each watch after a while (the client
        # watches again), so no stream outlives a test however its client went away.
        ends = asyncio.get_running_loop().time() + WATCH_SECONDS
        try:
            while asyncio.get_running_loop().time() < ends:
                if request.transport is None or request.transport.is_closing():
                    break
                try:
                    event = await asyncio.wait_for(queue.get(), 0.1)
                except TimeoutError:
                    continue
                await response.write(json.dumps(event).encode() + b"\n")
        finally:
            self._watchers.remove((name, queue))
        return response

    async def read_configuration(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.calls.append(f"GET config {name}")
        if name not in self.configurations:
            return status(404, "NotFound", f"{name} not found")
        return web.json_response(self.configurations[name])

    async def patch_configuration(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.calls.append(f"PATCH config {name}")
        if request.content_type != "application/json-patch+json":
            return status(415, "UnsupportedMediaType", request.content_type)
        if name not in self.configurations:
            return status(404, "NotFound", f"{name} not found")
        ops = json.loads(await request.read())
        try:
            patched = jsonpatch.apply_patch(copy.deepcopy(self.configurations[name]), ops)
        except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as e:
            return status(422, "Invalid", str(e))
        patched["metadata"]["resourceVersion"] = self._version()
        self.configurations[name] = patched
        self._notify("MODIFIED", patched)
        return web.json_response(patched)


@asynccontextmanager
async def running(fake: FakeKube) -> AsyncIterator[ApiClient]:
    """Serve ``fake`` on loopback and yield a real client pointed at it."""
    server = TestServer(fake.app)
    await server.start_server()
    configuration = Configuration(host=str(server.make_url("")).rstrip("/"))
    api = ApiClient(configuration)
    try:
        yield api
    finally:
        await api.close()
        await server.close()
