"""The member clusters of the test Karmada, and how they join it.

A member is a ``ControlPlane`` of its own (kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) with kwok nodes in one cloud region. It joins in Push mode the way
``karmadactl join`` joins a cluster (``pkg/karmadactl/join`` and ``pkg/util/credential.go`` in the
Karmada module): a ServiceAccount in the member with a ClusterRole over everything, its token and
the member's CA in a Secret in Karmada's ``karmada-cluster`` namespace, and a ``Cluster`` naming the
member's endpoint, that Secret, its provider, region and zones. The same calls, made here; no
karmadactl binary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from shared.core.models import Cloud
from tests.e2e.cluster import ApiStatusError, ControlPlane
from tests.e2e.fleet import FakeNode, create_fake_nodes, fake_fleet

CLUSTER_NAMESPACE: Final = "karmada-cluster"
CLUSTERS_PATH: Final = "/apis/cluster.karmada.io/v1alpha1/clusters"
# What karmadactl labels the objects it creates with.
_SYSTEM_LABELS: Final = {"karmada.io/system": "true"}
_RBAC: Final = "/apis/rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class Member:
    """A member cluster: its name in Karmada and the one cloud region its nodes are in."""

    name: str
    cloud: Cloud
    region: str


MEMBERS: Final = (
    Member("aws-us-west-2", Cloud.AWS, "us-west-2"),
    Member("gcp-europe-west1", Cloud.GCP, "europe-west1"),
    Member("azure-southeastasia", Cloud.AZURE, "southeastasia"),
)
"""Three clouds, three grid zones (the US Northwest, Belgium, Singapore)."""


class MemberCluster:
    """A member's control plane and the kwok nodes it is given when it starts."""

    def __init__(self, member: Member, control_plane: ControlPlane, nodes_per_member: int) -> None:
        self.member = member
        self.control_plane = control_plane
        self.nodes: tuple[FakeNode, ...] = fake_fleet(
            {member.cloud: (member.region,)}, nodes_per_region=nodes_per_member
        )

    def __repr__(self) -> str:
        return f"MemberCluster({self.name!r}, server={self.control_plane.server!r})"

    @property
    def name(self) -> str:
        return self.member.name

    def start(self) -> None:
        self.control_plane.start()
        create_fake_nodes(self.control_plane, self.nodes)


def ensure_namespace(control_plane: ControlPlane, name: str) -> None:
    """Namespace ``name``, labelled as Karmada's system namespaces are, unless it exists."""
    try:
        control_plane.request(
            "POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": _SYSTEM_LABELS}}
        )
    except ApiStatusError as e:
        if e.status != 409:
            raise


def join_in_push_mode(karmada: ControlPlane, member: MemberCluster) -> None:
    """``karmadactl join``, on the Karmada API server ``karmada``, without the impersonator
    account (for the cluster proxy, which the tests do not use)."""
    token, ca_bundle = _member_credentials(member)
    ensure_namespace(karmada, CLUSTER_NAMESPACE)
    kube_system = member.control_plane.request("GET", "/api/v1/namespaces/kube-system")
    secret = karmada.request(
        "POST",
        f"/api/v1/namespaces/{CLUSTER_NAMESPACE}/secrets",
        {
            "metadata": {"name": member.name, "labels": _SYSTEM_LABELS},
            "data": {"caBundle": ca_bundle, "token": token},
        },
    )
    cluster = karmada.request(
        "POST",
        CLUSTERS_PATH,
        {
            "apiVersion": "cluster.karmada.io/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": member.name},
            "spec": {
                "id": kube_system["metadata"]["uid"],
                "syncMode": "Push",
                "apiEndpoint": member.control_plane.server,
                "secretRef": {"namespace": CLUSTER_NAMESPACE, "name": member.name},
                "provider": member.member.cloud.value,
                "region": member.member.region,
                "zones": sorted({n.zone for n in member.nodes}),
            },
        },
    )
    # The Secret goes with its Cluster.
    karmada.request(
        "PATCH",
        f"/api/v1/namespaces/{CLUSTER_NAMESPACE}/secrets/{secret['metadata']['name']}",
        {"metadata": {"ownerReferences": [_controller_reference(cluster)]}},
    )


def _controller_reference(cluster: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": cluster["apiVersion"],
        "kind": cluster["kind"],
        "name": cluster["metadata"]["name"],
        "uid": cluster["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _member_credentials(member: MemberCluster) -> tuple[str, str]:
    """A ServiceAccount in the member allowed everything; its token and the member's CA, both
    base64 as Secret data is."""
    cp = member.control_plane
    account = f"karmada-{member.name}"
    role = f"karmada-controller-manager:{account}"
    namespaced = f"/api/v1/namespaces/{CLUSTER_NAMESPACE}"
    ensure_namespace(cp, CLUSTER_NAMESPACE)
    cp.request(
        "POST", f"{namespaced}/serviceaccounts", {"metadata": _labelled(account, CLUSTER_NAMESPACE)}
    )
    cp.request(
        "POST",
        f"{_RBAC}/clusterroles",
        {
            "metadata": _labelled(role),
            "rules": [
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["get"]},
            ],
        },
    )
    cp.request(
        "POST",
        f"{_RBAC}/clusterrolebindings",
        {
            "metadata": _labelled(role),
            "subjects": [
                {"kind": "ServiceAccount", "name": account, "namespace": CLUSTER_NAMESPACE}
            ],
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
        },
    )
    cp.request(
        "POST",
        f"{namespaced}/secrets",
        {
            "metadata": {
                "name": account,
                "annotations": {"kubernetes.io/service-account.name": account},
            },
            "type": "kubernetes.io/service-account-token",
        },
    )
    data: dict[str, str] = {}

    def token_written() -> bool:
        # The member's token controller writes the token and its CA into the Secret.
        data.update(cp.request("GET", f"{namespaced}/secrets/{account}").get("data") or {})
        return "token" in data and "ca.crt" in data

    cp.wait_for(f"{member.name}: the token of ServiceAccount {account}", token_written)
    return data["token"], data["ca.crt"]


def _labelled(name: str, namespace: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": _SYSTEM_LABELS}
    if namespace is not None:
        metadata["namespace"] = namespace
    return metadata
