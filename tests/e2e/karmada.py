"""A real Karmada on loopback for the end-to-end tests, with member clusters joined in Push mode.

``Karmada`` runs the Karmada API server (a kube-apiserver, with a kube-controller-manager for
namespaces and garbage collection and no nodes), karmada-webhook, karmada-aggregated-apiserver
(``cluster.karmada.io`` has no CRD: its Cluster objects are served by it, through an APIService),
karmada-controller-manager and karmada-scheduler, as built by ``controlplane/build.sh`` with the
CRDs and webhook configuration of the same module; then starts the member clusters
(``karmada_members.py``) and joins them. Every kube-apiserver keeps its objects under a prefix of
its own in one etcd.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from kubernetes_asyncio import client as k8s

from tests.e2e.cluster import (
    Binaries,
    Components,
    ControlPlane,
    ControlPlaneError,
    free_port,
)
from tests.e2e.karmada_members import (
    CLUSTERS_PATH,
    MEMBERS,
    Member,
    MemberCluster,
    ensure_namespace,
    join_in_push_mode,
)

logger = logging.getLogger(__name__)

KARMADA_VERSION: Final = "v1.18.2"
KARMADA_BINARIES: Final = (
    "karmada-aggregated-apiserver",
    "karmada-controller-manager",
    "karmada-scheduler",
    "karmada-webhook",
)
MANIFESTS: Final = "karmada-manifests"
SYSTEM_NAMESPACE: Final = "karmada-system"
# The controllers Karmada's own deployment runs against its API server, plus the service-account
# controller, whose default account is how ``ControlPlane`` sees the controller manager working.
_KUBE_CONTROLLERS: Final = (
    "namespace",
    "garbagecollector",
    "serviceaccount",
    "serviceaccount-token",
    "clusterrole-aggregation",
)
_AGGREGATED_SERVICE: Final = "karmada-aggregated-apiserver"
# Karmada ships its webhooks with a 3 s timeout and failurePolicy Fail; on two busy cores a slow
# answer would fail the write instead of the test asserting on its outcome.
_WEBHOOK_TIMEOUT_SECONDS: Final = 10


class Karmada:
    """Karmada and its member clusters on loopback; ``start()`` returns once every Cluster is
    Ready. Use as a context manager, or call ``start()`` and ``stop()``.

    ``api`` is the Karmada API server's ``ControlPlane`` (its etcd holds every cluster's objects),
    ``components`` Karmada's own processes, ``members`` each member's ``MemberCluster`` by name.
    """

    def __init__(
        self,
        binaries: Binaries,
        members: Sequence[Member] = MEMBERS,
        *,
        nodes_per_member: int = 2,
        workdir: Path | None = None,
        start_timeout: float = 180.0,
    ) -> None:
        missing = [n for n in (*KARMADA_BINARIES, MANIFESTS) if not binaries.path(n).exists()]
        if missing:
            raise ControlPlaneError(
                f"{binaries.directory} lacks {', '.join(missing)}; run controlplane/build.sh"
            )
        self.binaries = binaries
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="stellar-carbon-karmada-"))
        self.start_timeout = start_timeout
        self.api = ControlPlane(
            binaries,
            workdir=self.workdir / "karmada-apiserver",
            start_timeout=start_timeout,
            etcd_prefix="/karmada",
            pods=False,
            controllers=_KUBE_CONTROLLERS,
        )
        self.members = {
            m.name: MemberCluster(
                m,
                ControlPlane(
                    binaries,
                    workdir=self.workdir / m.name,
                    start_timeout=start_timeout,
                    etcd_url=self.api.etcd_url,
                    etcd_prefix=f"/members/{m.name}",
                ),
                nodes_per_member,
            )
            for m in members
        }
        self.ports = {
            "karmada-aggregated-apiserver": free_port(),
            "karmada-webhook": free_port(),
            "karmada-webhook-health": free_port(),
            "karmada-controller-manager-health": free_port(),
            "karmada-scheduler-health": free_port(),
        }
        self.components = Components(binaries, self.workdir / "karmada", start_timeout)
        self.pki_dir = self.workdir / "karmada" / "pki"
        self.startup_seconds: float | None = None

    def __repr__(self) -> str:
        return f"Karmada(server={self.api.server!r}, members={list(self.members)!r})"

    @property
    def name(self) -> str:
        return f"Karmada {KARMADA_VERSION}"

    def __enter__(self) -> Karmada:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def server(self) -> str:
        return self.api.server

    def configuration(self) -> k8s.Configuration:
        """A kubernetes-asyncio configuration for the Karmada API server's admin."""
        return self.api.configuration()

    # lifecycle

    def start(self) -> None:
        """Start everything and join every member; on failure stop and raise."""
        started = time.monotonic()
        atexit.register(self.stop)
        try:
            # One after the other, from this thread: a child dies with the thread that started
            # it (PR_SET_PDEATHSIG), so worker threads cannot start members side by side.
            self.api.start()
            self._start_karmada()
            logger.info("karmada up at %s after %.1fs", self.server, time.monotonic() - started)
            for member in self.members.values():
                member.start()
            for member in self.members.values():
                join_in_push_mode(self.api, member)
            self.components.wait_for("every Cluster Ready", self._clusters_ready)
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        self.startup_seconds = time.monotonic() - started
        logger.info(
            "karmada with %d Ready members up in %.1fs", len(self.members), self.startup_seconds
        )

    def stop(self, *, keep_workdir: bool = False) -> None:
        """Stop Karmada (whose watches would hold the members' apiservers open), the members,
        then the Karmada API server with the etcd they all share; idempotent."""
        self.components.stop()
        for member in reversed(self.members.values()):
            member.control_plane.stop(keep_workdir=True)
        self.api.stop(keep_workdir=True)
        atexit.unregister(self.stop)
        if self._own_workdir and not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # the Karmada components

    def _start_karmada(self) -> None:
        api = self.api
        ca = api.ca
        ensure_namespace(api, SYSTEM_NAMESPACE)
        ca.issue(
            "karmada-webhook",
            ["127.0.0.1", "localhost", f"karmada-webhook.{SYSTEM_NAMESPACE}.svc"],
        ).write(self.pki_dir / "webhook", "tls")
        # The aggregator checks the name of the Service the APIService points at.
        ca.issue(
            _AGGREGATED_SERVICE,
            ["127.0.0.1", "localhost", f"{_AGGREGATED_SERVICE}.{SYSTEM_NAMESPACE}.svc"],
        ).write(self.pki_dir, "aggregated-apiserver")

        self._apply_crds()
        self.components.spawn("karmada-webhook", self._webhook_args())
        self.components.spawn("karmada-aggregated-apiserver", self._aggregated_apiserver_args())
        self.components.wait_for("karmada-webhook /readyz", self._webhook_ready)
        self._register_webhooks()
        self.components.wait_for(
            "karmada-aggregated-apiserver /readyz", self._aggregated_apiserver_ready
        )
        self._register_aggregated_apiserver()
        self.components.wait_for(
            "APIService v1alpha1.cluster.karmada.io Available", self._clusters_served
        )
        self.components.spawn("karmada-controller-manager", self._controller_manager_args())
        self.components.spawn("karmada-scheduler", self._scheduler_args())
        self.components.wait_for(
            "karmada-controller-manager /healthz", self._healthy("controller-manager")
        )
        self.components.wait_for("karmada-scheduler /healthz", self._healthy("scheduler"))

    def _manifest(self, *parts: str) -> Path:
        return self.binaries.path(MANIFESTS).joinpath(*parts)

    def _webhook_url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.ports['karmada-webhook']}{path}"

    def _on_loopback(self, url: str) -> str:
        """``url`` of Karmada's manifests (the webhook's in-cluster Service) at the webhook's
        loopback port."""
        return self._webhook_url(urllib.parse.urlsplit(url).path)

    def _apply_crds(self) -> None:
        """The CRDs as the module's kustomization lists them, with its patches: the bindings'
        conversion webhook, pointed at karmada-webhook on loopback."""
        crds = self._manifest("crds")
        kustomization = yaml.safe_load((crds / "kustomization.yaml").read_text())
        patches = [yaml.safe_load((crds / p["path"]).read_text()) for p in kustomization["patches"]]
        conversions = {p["metadata"]["name"]: p["spec"]["conversion"] for p in patches}
        names = []
        for resource in kustomization["resources"]:
            crd = yaml.safe_load((crds / resource).read_text())
            name = crd["metadata"]["name"]
            if name in conversions:
                conversion = conversions[name]
                client = {
                    "url": self._on_loopback(conversion["webhook"]["clientConfig"]["url"]),
                    "caBundle": self.api.ca.ca_bundle,
                }
                conversion["webhook"]["clientConfig"] = client
                crd["spec"]["conversion"] = conversion
            self.api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            names.append(name)
        self.components.wait_for(
            "Karmada CRDs Established", lambda: all(map(self._established, names))
        )

    def _established(self, name: str) -> bool:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        return _holds(self.api.request("GET", path), "Established")

    def _register_webhooks(self) -> None:
        """Karmada's own webhook configurations, every hook at the loopback port."""
        text = self._manifest("webhook-configuration.yaml").read_text()
        text = text.replace("{{caBundle}}", self.api.ca.ca_bundle)
        for configuration in yaml.safe_load_all(text):
            for hook in configuration["webhooks"]:
                hook["clientConfig"]["url"] = self._on_loopback(hook["clientConfig"]["url"])
                hook["timeoutSeconds"] = _WEBHOOK_TIMEOUT_SECONDS
            plural = configuration["kind"].lower() + "s"
            self.api.request(
                "POST", f"/apis/admissionregistration.k8s.io/v1/{plural}", configuration
            )

    def _register_aggregated_apiserver(self) -> None:
        # An ExternalName Service is how an APIService reaches a server outside the cluster's
        # network: the aggregator dials the external name at the APIService's port (Endpoints
        # may not hold loopback addresses).
        self.api.request(
            "POST",
            f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": _AGGREGATED_SERVICE, "namespace": SYSTEM_NAMESPACE},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            },
        )
        self.api.request(
            "POST",
            "/apis/apiregistration.k8s.io/v1/apiservices",
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1alpha1.cluster.karmada.io"},
                "spec": {
                    "group": "cluster.karmada.io",
                    "version": "v1alpha1",
                    "groupPriorityMinimum": 2000,
                    "versionPriority": 10,
                    "caBundle": self.api.ca.ca_bundle,
                    "service": {
                        "name": _AGGREGATED_SERVICE,
                        "namespace": SYSTEM_NAMESPACE,
                        "port": self.ports["karmada-aggregated-apiserver"],
                    },
                },
            },
        )

    def _webhook_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.api.kubeconfig_path}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['karmada-webhook']}",
            f"--cert-dir={self.pki_dir / 'webhook'}",
            "--metrics-bind-address=0",
            f"--health-probe-bind-address=127.0.0.1:{self.ports['karmada-webhook-health']}",
        ]

    def _aggregated_apiserver_args(self) -> list[str]:
        kubeconfig = self.api.kubeconfig_path
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            # Beside the Karmada API server's objects, as Karmada deploys it.
            f"--etcd-servers={self.api.etcd_url}",
            f"--etcd-prefix={self.api.etcd_prefix}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['karmada-aggregated-apiserver']}",
            f"--tls-cert-file={self.pki_dir / 'aggregated-apiserver.crt'}",
            f"--tls-private-key-file={self.pki_dir / 'aggregated-apiserver.key'}",
        ]

    def _controller_manager_args(self) -> list[str]:
        port = self.ports["karmada-controller-manager-health"]
        return [
            f"--kubeconfig={self.api.kubeconfig_path}",
            "--leader-elect=false",
            "--metrics-bind-address=0",
            f"--health-probe-bind-address=127.0.0.1:{port}",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.api.kubeconfig_path}",
            "--leader-elect=false",
            "--metrics-bind-address=0",
            f"--health-probe-bind-address=127.0.0.1:{self.ports['karmada-scheduler-health']}",
        ]

    # readiness probes

    def _webhook_ready(self) -> bool:
        status, _ = self.api.get(self._webhook_url("/readyz/"))
        return status == 200

    def _aggregated_apiserver_ready(self) -> bool:
        port = self.ports["karmada-aggregated-apiserver"]
        status, _ = self.api.get(f"https://127.0.0.1:{port}/readyz", token=True)
        return status == 200

    def _clusters_served(self) -> bool:
        path = "/apis/apiregistration.k8s.io/v1/apiservices/v1alpha1.cluster.karmada.io"
        return _holds(self.api.request("GET", path), "Available")

    def _healthy(self, component: str) -> Callable[[], bool]:
        port = self.ports[f"karmada-{component}-health"]

        def probe() -> bool:
            status, _ = self.api.get(f"http://127.0.0.1:{port}/healthz")
            return status == 200

        return probe

    def _clusters_ready(self) -> bool:
        clusters = self.api.request("GET", CLUSTERS_PATH)["items"]
        ready = {c["metadata"]["name"] for c in clusters if _holds(c, "Ready")}
        return ready >= set(self.members)

    # logs

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of every component log: Karmada's, then each member's."""
        parts = [
            f"##### Karmada ({self.api.server}) #####\n{self.api.log_tail(lines)}",
            self.components.log_tail(lines),
        ]
        parts += [
            f"##### member {m.name} ({m.control_plane.server}) #####\n"
            f"{m.control_plane.log_tail(lines)}"
            for m in self.members.values()
        ]
        return "\n".join(parts)


def _holds(obj: Mapping[str, Any], condition: str) -> bool:
    """Whether ``obj``'s status says ``condition`` is True."""
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c["type"] == condition and c["status"] == "True" for c in conditions)
