"""Asynchronous helpers end-to-end tests use against the control plane (kubernetes-asyncio).

Namespaces ready for pods, mutating webhooks registered by URL, and waiting on pods with a failure
message that says why they are not where the test expected them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

_POLL_SECONDS: Final = 0.2

T = TypeVar("T")


def as_body(manifest: Mapping[str, Any]) -> Any:
    """A plain manifest as a request body. kubernetes-asyncio sends dicts as they are, though
    its signatures name only its model classes; manifests read better in tests."""
    return dict(manifest)


async def _wait_for_default_service_account(core: k8s.CoreV1Api, namespace: str) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            await core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as e:
            if e.status != 404:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"namespace {namespace} got no default ServiceAccount within 60s;"
                " the controller manager is not doing its work"
            )
        await asyncio.sleep(_POLL_SECONDS)


@contextlib.asynccontextmanager
async def fresh_namespace(api: k8s.ApiClient, prefix: str = "e2e-") -> AsyncIterator[str]:
    """A fresh namespace whose default ServiceAccount exists (so pods can be created); deleted
    on exit without waiting for the namespace controller to finish."""
    core = k8s.CoreV1Api(api)
    created = await core.create_namespace(as_body({"metadata": {"generateName": prefix}}))
    name: str = created.metadata.name
    try:
        await _wait_for_default_service_account(core, name)
        yield name
    finally:
        with contextlib.suppress(ApiException):
            await core.delete_namespace(name)


def mutating_webhook_configuration(
    name: str,
    url: str,
    ca_bundle: str,
    *,
    failure_policy: Literal["Ignore", "Fail"] = "Ignore",
    timeout_seconds: int = 5,
    namespace_selector: Mapping[str, Any] | None = None,
    object_selector: Mapping[str, Any] | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A MutatingWebhookConfiguration calling ``url`` directly (nothing serves ClusterIPs here).

    ``ca_bundle`` is base64 PEM, as ``CertificateAuthority.ca_bundle`` returns it. The default
    rule matches pod CREATE only, like the product's chart.
    """
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": f"pods.{name}",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": failure_policy,
                "timeoutSeconds": timeout_seconds,
                "matchPolicy": "Equivalent",
                "reinvocationPolicy": "Never",
                "clientConfig": {"url": url, "caBundle": ca_bundle},
                "rules": list(
                    rules
                    or [
                        {
                            "operations": ["CREATE"],
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "resources": ["pods"],
                            "scope": "Namespaced",
                        }
                    ]
                ),
                "namespaceSelector": dict(namespace_selector or {}),
                "objectSelector": dict(object_selector or {}),
            }
        ],
    }


@contextlib.asynccontextmanager
async def registered_mutating_webhook(
    api: k8s.ApiClient, configuration: Mapping[str, Any]
) -> AsyncIterator[str]:
    """Create a MutatingWebhookConfiguration, yield its name, delete it on exit.

    The apiserver picks new configurations up through an informer, usually within a second;
    callers that need certainty should probe with a pod before asserting.
    """
    admission = k8s.AdmissionregistrationV1Api(api)
    created = await admission.create_mutating_webhook_configuration(as_body(configuration))
    name: str = created.metadata.name
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            await admission.delete_mutating_webhook_configuration(name)


async def dry_run_pod(api: k8s.ApiClient, namespace: str, manifest: Mapping[str, Any]) -> k8s.V1Pod:
    """The pod as admission would store it, mutating webhooks included, without storing it.

    Webhooks declaring ``sideEffects: None`` are called for dry runs, so this is how a test sees
    whether a freshly registered webhook is in effect yet.
    """
    return await k8s.CoreV1Api(api).create_namespaced_pod(
        namespace, as_body(manifest), dry_run="All"
    )


async def wait_for_admission(
    api: k8s.ApiClient,
    namespace: str,
    manifest: Mapping[str, Any],
    admitted: Callable[[k8s.V1Pod], bool],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - the last admitted pod goes into the failure
) -> k8s.V1Pod:
    """Dry-run ``manifest`` until admission returns a pod for which ``admitted`` holds.

    The apiserver learns of new webhook configurations through an informer, so a test that has
    just registered one waits here before creating the pods it asserts on.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        pod = await dry_run_pod(api, namespace, manifest)
        if admitted(pod):
            return pod
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"admission did not return the expected pod within {timeout:.0f}s; last:\n"
                f"  labels={pod.metadata.labels}\n  annotations={pod.metadata.annotations}\n"
                f"  affinity={pod.spec.affinity}"
            )
        await asyncio.sleep(_POLL_SECONDS)


def _describe_pod(pod: k8s.V1Pod) -> str:
    conditions = {c.type: c for c in pod.status.conditions or []}
    scheduled = conditions.get("PodScheduled")
    note = ""
    if scheduled is not None and scheduled.status != "True":
        note = f" unschedulable: {scheduled.message or scheduled.reason}"
    deleting = " (deleting)" if pod.metadata.deletion_timestamp else ""
    return (
        f"  {pod.metadata.name}{deleting}: phase={pod.status.phase}"
        f" node={pod.spec.node_name or '-'}{note}"
    )


async def wait_for_pods(
    api: k8s.ApiClient,
    namespace: str,
    selector: str,
    *,
    count: int,
    running: bool = True,
    timeout: float = 60.0,  # noqa: ASYNC109 - the state at the deadline goes into the failure
) -> list[k8s.V1Pod]:
    """Wait until exactly ``count`` live pods match ``selector``, each bound to a node (and in
    phase Running when ``running``); return them sorted by name.

    On timeout raise AssertionError listing every matching pod, why it is not scheduled, and the
    namespace's recent warning events.
    """
    core = k8s.CoreV1Api(api)
    state = "Running" if running else "bound"
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        listed = await core.list_namespaced_pod(namespace, label_selector=selector)
        pods = sorted(
            (p for p in listed.items if p.metadata.deletion_timestamp is None),
            key=lambda p: p.metadata.name,
        )
        done = [
            p for p in pods if p.spec.node_name and (not running or p.status.phase == "Running")
        ]
        if len(pods) == count and len(done) == count:
            return pods
        if asyncio.get_running_loop().time() > deadline:
            events = await core.list_namespaced_event(namespace)
            warnings = [
                f"  {e.involved_object.kind}/{e.involved_object.name}: {e.reason}: {e.message}"
                for e in events.items
                if e.type == "Warning"
            ][-10:]
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {count} {state} pod(s) matching "
                f"{selector!r} in {namespace}; {len(done)} of {len(pods)} are:\n"
                + "\n".join(_describe_pod(p) for p in listed.items)
                + "\nwarning events:\n"
                + ("\n".join(warnings) or "  none")
            )
        await asyncio.sleep(_POLL_SECONDS)


async def eventually(
    what: str,
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - the last value read goes into the failure
) -> T:
    """Read until ``done`` holds for the value read, and return that value; controllers settle
    a moment after the write a test made. On timeout fail with the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s; last: {value!r}")
        await asyncio.sleep(_POLL_SECONDS)
