"""The Kubernetes API side of the cluster: client and raw calls (``api``), list + watch
(``reflector``), the inventory built on them (``inventory``) and the StatefulSets, namespaces and
bound pods a read-pool decision needs (``workloads``). Callers import from here.
"""

from shared.cluster.kube.api import KubeApiError, call_for_text, call_raw, load_api_client
from shared.cluster.kube.inventory import KubeInventory, OnChange
from shared.cluster.kube.reflector import WatchSettings
from shared.cluster.kube.workloads import KubeWorkloads

__all__ = [
    "KubeApiError",
    "KubeInventory",
    "KubeWorkloads",
    "OnChange",
    "WatchSettings",
    "call_for_text",
    "call_raw",
    "load_api_client",
]
