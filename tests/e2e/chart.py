"""Installing the Helm chart into the real control plane, for the scenarios that need a release.

``Helm`` runs the helm binary built with the control plane against its kubeconfig; ``install``
gives a release whose Deployments rolled out and uninstalls it afterwards; ``Release`` lists what
the chart created. The module-scoped ``helm`` fixture is in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from tests.e2e.cluster import ControlPlane
from tests.e2e.processes import REPO, LocalService
from tests.e2e.services import delete_namespace

CHART: Final = REPO / "charts" / "stellar-carbon"
WEBHOOK: Final = "pods.carbon.stellar.org"
HELM_TIMEOUT: Final = "120s"


_RESOURCES: Final = {
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "ConfigMap": ("configmaps", True),
    "Deployment": ("deployments", True),
    "Ingress": ("ingresses", True),
    "MutatingWebhookConfiguration": ("mutatingwebhookconfigurations", False),
    "NetworkPolicy": ("networkpolicies", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True),
}


class Helm:
    """The helm CLI against the test cluster only, with its own cache and config directories."""

    def __init__(self, binary: Path, kubeconfig: Path, home: Path) -> None:
        self._binary = binary
        self._kubeconfig = kubeconfig
        self._env = {
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            # The Kubernetes client keeps its discovery cache under $HOME/.kube: without HOME
            # it would land in the working directory.
            "HOME": str(home),
            "PATH": "/usr/bin:/bin",
        }

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [str(self._binary), *args, "--kubeconfig", str(self._kubeconfig)],
            capture_output=True,
            text=True,
            env=self._env,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout


@dataclass(frozen=True)
class Release:
    """An installed release and the objects helm says it made."""

    name: str
    namespace: str
    objects: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, component: str) -> dict[str, Any]:
        (found,) = [
            o
            for o in self.of_kind(kind)
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        return found


def api_path(obj: Mapping[str, Any], namespace: str) -> str:
    """The URL path of a rendered object in the API."""
    plural, namespaced = _RESOURCES[obj["kind"]]
    group_version = obj["apiVersion"]
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    name = obj["metadata"]["name"]
    if not namespaced:
        return f"{base}/{plural}/{name}"
    return f"{base}/namespaces/{obj['metadata'].get('namespace', namespace)}/{plural}/{name}"


@contextlib.contextmanager
def installed(
    helm: Helm, control_plane: ControlPlane, prefix: str, *values: str
) -> Iterator[Release]:
    """``helm install --wait`` into a fresh namespace; uninstall and delete it afterwards."""
    suffix = secrets.token_hex(3)
    name, namespace = f"{prefix}-{suffix}", f"{prefix}-{suffix}"
    try:
        helm("install", name, str(CHART), "--namespace", namespace, "--create-namespace", *values)
        manifest = helm("get", "manifest", name, "--namespace", namespace)
        objects = tuple(doc for doc in yaml.safe_load_all(manifest) if doc)
        yield Release(name, namespace, objects)
    finally:
        with contextlib.suppress(AssertionError):
            helm("uninstall", name, "--namespace", namespace, "--ignore-not-found", "--wait")
        delete_namespace(control_plane, namespace)


@contextlib.contextmanager
def install(helm: Helm, control_plane: ControlPlane, prefix: str, *args: str) -> Iterator[Release]:
    """``installed`` with ``--wait``: every Deployment available on the kwok nodes."""
    with installed(helm, control_plane, prefix, "--wait", "--timeout", HELM_TIMEOUT, *args) as r:
        yield r


def container_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The literal environment values of a Deployment's first container."""
    (container, *_) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def service_account_of(deployment: Mapping[str, Any]) -> str:
    name: str = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    return name


def chart_process(
    name: str,
    module: str,
    env: Mapping[str, str],
    log_dir: Path,
    services: list[LocalService],
) -> LocalService:
    service = LocalService(name, module, env, log_dir)
    services.append(service)
    service.start()
    return service
