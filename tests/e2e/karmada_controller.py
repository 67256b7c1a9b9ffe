"""The product's Karmada controller as a real process, with the rights docs/karmada.md documents.

``controller_kubeconfig`` creates, on the Karmada API server, a ServiceAccount bound to exactly the
ClusterRole and Role of docs/karmada.md (read from the document itself, so a grant the controller
needs and the document lacks fails the scenarios) and writes a kubeconfig holding its token.
``KarmadaController`` runs ``python -m multicluster`` on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from tests.e2e.carbon_api import CarbonApiThread, custom_api_carbon_env
from tests.e2e.cluster import ApiStatusError, ControlPlane, free_port
from tests.e2e.karmada import SYSTEM_NAMESPACE, Karmada
from tests.e2e.probes import http_get, metric_samples
from tests.e2e.processes import REPO, LocalService
from tests.e2e.services import service_account_kubeconfig

ACCOUNT: Final = "stellar-carbon-karmada"
_DOC: Final = REPO / "docs" / "karmada.md"
_RBAC: Final = "/apis/rbac.authorization.k8s.io/v1"


def documented_rbac() -> list[dict[str, Any]]:
    """The ClusterRole and Role in docs/karmada.md's section on RBAC."""
    text = _DOC.read_text(encoding="utf-8")
    section = text.split("## RBAC on the Karmada API server", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, "docs/karmada.md has no RBAC block"
    return [doc for doc in yaml.safe_load_all(match.group(1)) if doc]


def controller_kubeconfig(karmada: Karmada, path: Path) -> Path:
    """A kubeconfig for the Karmada API server acting as a ServiceAccount with the documented
    roles, and nothing else."""
    api = karmada.api
    subject = {"kind": "ServiceAccount", "name": ACCOUNT, "namespace": SYSTEM_NAMESPACE}
    _create(
        api,
        f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/serviceaccounts",
        {"metadata": {"name": ACCOUNT}},
    )
    for role in documented_rbac():
        kind, name = role["kind"], role["metadata"]["name"]
        namespace = role["metadata"].get("namespace")
        where = f"{_RBAC}/namespaces/{namespace}" if namespace else _RBAC
        _create(api, f"{where}/{kind.lower()}s", role)
        binding = {
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "subjects": [subject],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        }
        _create(api, f"{where}/{kind.lower()}bindings", binding)
    return service_account_kubeconfig(api, SYSTEM_NAMESPACE, ACCOUNT, path)


def _create(api: ControlPlane, path: str, body: Mapping[str, Any]) -> None:
    try:
        api.request("POST", path, body)
    except ApiStatusError as e:
        if e.status != 409:  # a second test of the module finds them made
            raise


class KarmadaController:
    """``python -m multicluster`` in apply mode on the fake carbon API, seconds for its interval,
    dwell and Lease."""

    def __init__(
        self,
        kubeconfig: Path,
        carbon_api: CarbonApiThread,
        log_dir: Path,
        *,
        dwell: float,
        max_moved_share: float,
    ) -> None:
        self.port = free_port()
        self.service = LocalService(
            "multicluster",
            "multicluster",
            {
                **custom_api_carbon_env(carbon_api),
                "STELLAR_CARBON_KARMADA_MODE": "apply",
                "STELLAR_CARBON_KARMADA_KUBECONFIG": str(kubeconfig),
                "STELLAR_CARBON_KARMADA_INTERVAL": "1",
                "STELLAR_CARBON_KARMADA_DWELL": f"{dwell:g}",
                "STELLAR_CARBON_KARMADA_MAX_MOVED_SHARE": f"{max_moved_share:g}",
                "STELLAR_CARBON_KARMADA_LEASE_DURATION": "4",
                "STELLAR_CARBON_KARMADA_BIND_ADDRESS": "127.0.0.1",
                "STELLAR_CARBON_KARMADA_HEALTH_PORT": str(self.port),
            },
            log_dir,
        )

    def start(self) -> None:
        self.service.start()
        self.service.wait_until("ready and leading", self._leading, timeout=60)

    def _leading(self) -> bool:
        status, body = http_get(f"http://127.0.0.1:{self.port}/readyz")
        return status == 200 and json.loads(body).get("leader") is True

    def counter(self, name: str, **labels: str) -> float:
        """A counter of ``/metrics`` (0 before its first increment)."""
        samples = metric_samples(f"http://127.0.0.1:{self.port}/metrics")
        return samples.get((f"{name}_total", frozenset(labels.items())), 0.0)
