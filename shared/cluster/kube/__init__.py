"""The Kubernetes API side of the cluster: client and raw calls (``api``), list + watch
(``reflector``) and the inventory built on them (``inventory``). Callers import from here.
"""

from shared.cluster.kube.api import KubeApiError, call_for_text, call_raw, load_api_client
from shared.cluster.kube.inventory import KubeInventory, OnChange
from shared.cluster.kube.reflector import WatchSettings

__all__ = [
    "KubeApiError",
    "KubeInventory",
    "OnChange",
    "WatchSettings",
    "call_for_text",
    "call_raw",
    "load_api_client",
]
