"""KubeInventory against a fake Kubernetes API server speaking the real list/watch wire format.

The fake (``tests.fakes.kube_api``) answers paginated lists and streams watch events exactly as
kube-apiserver does; a kubernetes-asyncio ApiClient talks to it over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from shared.cluster.inventory import Inventory, Taint
from shared.cluster.kube import KubeInventory, WatchSettings, load_api_client
from shared.cluster.pods import STELLAR_POD_SELECTORS
from shared.core.errors import ConfigError
from shared.core.models import Cloud
from tests.fakes.kube_api import FAST, WAIT, FakeKubeApi, node, pod, read_replica, serving

APP_NAME = "app.kubernetes.io/name"
ROLE = {"stellar.org/role": "read-replica"}


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeApi]:
    async with serving() as api:
        yield api


@pytest.fixture
async def client(fake: FakeKubeApi) -> AsyncIterator[ApiClient]:
    configuration = Configuration(host=fake.base_url)
    async with ApiClient(configuration) as api_client:
        yield api_client


class Changes:
    """Counts on_change calls and lets a test wait for a condition without sleeping blindly."""

    def __init__(self) -> None:
        self.calls = 0
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self.calls += 1
        self._event.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not condition():
                self._event.clear()
                # Conditions on request counts change without an inventory change; poll briefly.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.02):
                        await self._event.wait()


@pytest.fixture
def changes() -> Changes:
    return Changes()


@pytest.fixture
async def running(
    client: ApiClient, changes: Changes
) -> AsyncIterator[Callable[..., KubeInventory]]:
    """Factory for started inventories; every one is stopped at the end of the test."""
    started: list[KubeInventory] = []

    def make(**kwargs: Any) -> KubeInventory:
        kwargs.setdefault("settings", FAST)
        kwargs.setdefault("on_change", changes)
        inventory = KubeInventory(client, **kwargs)
        started.append(inventory)
        return inventory

    yield make
    for inventory in started:
        await inventory.stop()


async def started(inventory: KubeInventory) -> KubeInventory:
    await inventory.start()
    assert await inventory.wait_synced(WAIT)
    return inventory


# --- tests --------------------------------------------------------------------------------------


async def test_initial_list_populates_nodes_with_regions_clouds_taints_and_readiness(
    fake: FakeKubeApi, running: Callable[..., KubeInventory]
) -> None:
    await fake.put("nodes", node("aws-1", "us-west-2"))
    await fake.put(
        "nodes",
        node("gke-1", "europe-west1", provider_id="gce://proj/europe-west1-b/gke-1", ready="False"),
    )
    await fake.put(
        "nodes",
        node(
            "aks-1",
            "westeurope",
            provider_id="azure:///subscriptions/s/resourceGroups/rg/providers/x/vm/0",
            unschedulable=True,
            taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
        ),
    )
    inventory = await started(running())
    assert inventory.synced
    nodes = inventory.nodes
    assert set(nodes) == {"aws-1", "gke-1", "aks-1"}
    assert (nodes["aws-1"].region, nodes["aws-1"].cloud) == ("us-west-2", Cloud.AWS)
    assert (nodes["gke-1"].region, nodes["gke-1"].cloud) == ("europe-west1", Cloud.GCP)
    assert (nodes["aks-1"].region, nodes["aks-1"].cloud) == ("westeurope", Cloud.AZURE)
    assert nodes["aws-1"].schedulable
    assert not nodes["gke-1"].ready
    assert nodes["aks-1"].unschedulable
    assert nodes["aks-1"].taints == (Taint("node.kubernetes.io/unschedulable", "NoSchedule"),)
    assert nodes["aws-1"].cpu_millis == 7910


async def test_inventory_satisfies_the_inventory_protocol(
    running: Callable[..., KubeInventory],
) -> None:
    inventory: Inventory = running()
    assert not inventory.synced
    assert dict(inventory.nodes) == {}


async def test_large_clusters_are_listed_in_pages(
    fake: FakeKubeApi, running: Callable[..., KubeInventory]
) -> None:
    for i in range(5):
        await fake.put("nodes", node(f"node-{i}"))
    inventory = await started(running(settings=WatchSettings(page_size=2, backoff_initial_s=0.01)))
    assert len(inventory.nodes) == 5
    lists = [q for p, q in fake.requests if p == "/api/v1/nodes" and "watch" not in q]
    assert [q.get("limit") for q in lists] == ["2", "2", "2"]
    assert "continue" not in lists[0]
    assert all("continue" in q for q in lists[1:])


async def test_watch_events_add_modify_and_delete_nodes(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a", "us-west-2"))
    inventory = await started(running())

    await fake.put("nodes", node("node-b", "eu-central-1"))
    await changes.until(lambda: "node-b" in inventory.nodes)
    assert inventory.nodes["node-b"].region == "eu-central-1"

    await fake.put("nodes", node("node-a", "us-west-2", ready="False"))
    await changes.until(lambda: not inventory.nodes["node-a"].ready)

    await fake.delete("nodes", "node-b")
    await changes.until(lambda: "node-b" not in inventory.nodes)
    assert set(inventory.nodes) == {"node-a"}
    assert fake.count("/api/v1/nodes", watch=False) == 1


async def test_watch_resumes_from_the_last_version_after_the_server_ends_it(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    inventory = await started(running())
    await fake.put("nodes", node("node-a"))
    await changes.until(lambda: "node-a" in inventory.nodes)
    version_seen = fake.objects["nodes"][("", "node-a")]["metadata"]["resourceVersion"]

    await fake.end_watches()
    await changes.until(lambda: fake.count("/api/v1/nodes", watch=True) == 2)
    await fake.put("nodes", node("node-b"))
    await changes.until(lambda: "node-b" in inventory.nodes)

    watches = [q for p, q in fake.requests if p == "/api/v1/nodes" and "watch" in q]
    assert watches[-1]["resourceVersion"] == version_seen
    assert watches[-1]["allowWatchBookmarks"] in ("true", "True")
    assert fake.count("/api/v1/nodes", watch=False) == 1


async def test_bookmarks_advance_the_version_without_changing_anything(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a"))
    inventory = await started(running())
    await fake.bookmark("nodes")
    bookmark_version = str(fake.version)
    await fake.end_watches()  # the stream delivers the bookmark, then ends
    await changes.until(lambda: fake.count("/api/v1/nodes", watch=True) >= 2)
    resumed_from = [q for p, q in fake.requests if "watch" in q][-1]["resourceVersion"]
    assert resumed_from == bookmark_version
    assert changes.calls == 1  # the initial list; the bookmark changed nothing
    assert set(inventory.nodes) == {"node-a"}


async def test_expired_version_410_makes_the_inventory_list_again(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a"))
    await fake.put("nodes", node("node-b"))
    inventory = await started(running())

    # While the watch is down the history is compacted and changes happen that no watch can replay.
    await fake.compact("nodes")
    await fake.delete("nodes", "node-b")
    await fake.put("nodes", node("node-c", "asia-east1"), silently=True)
    await fake.compact("nodes")
    await fake.end_watches()

    await changes.until(lambda: set(inventory.nodes) == {"node-a", "node-c"})
    assert fake.count("/api/v1/nodes", watch=False) == 2
    assert inventory.nodes["node-c"].region == "asia-east1"
    assert inventory.synced


async def test_http_410_on_the_watch_request_also_relists(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    inventory = await started(running())
    fake.fail_next["nodes"] = [(410, "Expired")]
    await fake.end_watches()
    await changes.until(lambda: fake.count("/api/v1/nodes", watch=False) == 2)
    await fake.put("nodes", node("node-late"))
    await changes.until(lambda: "node-late" in inventory.nodes)


async def test_server_errors_are_retried_until_the_first_list_succeeds(
    fake: FakeKubeApi, running: Callable[..., KubeInventory]
) -> None:
    await fake.put("nodes", node("node-a"))
    fake.fail_next["nodes"] = [
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
        (429, "TooManyRequests"),
    ]
    inventory = await started(running())
    assert set(inventory.nodes) == {"node-a"}
    assert fake.count("/api/v1/nodes", watch=False) == 4
    assert inventory.last_error is None


async def test_retry_after_is_honoured_only_up_to_the_maximum_backoff(
    fake: FakeKubeApi, running: Callable[..., KubeInventory]
) -> None:
    await fake.put("nodes", node("node-a"))
    fake.retry_after = "3600"
    fake.fail_next["nodes"] = [(429, "TooManyRequests")]
    inventory = await started(running())
    assert set(inventory.nodes) == {"node-a"}


async def test_a_failed_watch_reconnects_from_its_version_without_relisting(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    inventory = await started(running())
    await changes.until(lambda: fake.open_watches["nodes"] == 1)
    fake.fail_next["nodes"] = [(500, "InternalError"), (500, "InternalError")]
    await fake.end_watches()
    # Two failed attempts, then a watch that holds.
    await changes.until(
        lambda: fake.count("/api/v1/nodes", watch=True) == 4 and fake.open_watches["nodes"] == 1
    )
    await fake.put("nodes", node("node-a"))
    await changes.until(lambda: "node-a" in inventory.nodes)
    assert fake.count("/api/v1/nodes", watch=False) == 1
    versions = {q["resourceVersion"] for p, q in fake.requests if "watch" in q}
    assert len(versions) == 1


async def test_unreachable_api_leaves_the_inventory_unsynced_with_the_error_recorded(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    fake.fail_next["nodes"] = [(503, "ServiceUnavailable")] * 1000
    inventory = running()
    await inventory.start()
    await changes.until(lambda: fake.count("/api/v1/nodes", watch=False) >= 3)
    assert not await inventory.wait_synced(0.01)
    assert not inventory.synced
    assert inventory.last_error is not None
    assert "503" in inventory.last_error
    assert "injected ServiceUnavailable" in inventory.last_error


async def test_unreadable_node_is_skipped_and_the_rest_kept(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("good"))
    await fake.put("nodes", node("bad", cpu="lots"))
    inventory = await started(running())
    assert set(inventory.nodes) == {"good"}
    # A later event making it readable brings it in; a broken update takes it out again.
    await fake.put("nodes", node("bad"))
    await changes.until(lambda: "bad" in inventory.nodes)
    await fake.put("nodes", node("bad", cpu="-1"))
    await changes.until(lambda: "bad" not in inventory.nodes)


async def test_garbage_on_the_watch_stream_reconnects_instead_of_crashing(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    inventory = await started(running())
    await fake.inject_raw("nodes", b"<html>502 Bad Gateway</html>\n")
    await changes.until(lambda: fake.count("/api/v1/nodes", watch=True) >= 2)
    # Retrying from the same version meets the same garbage until that history is gone; then
    # the 410 leads to a relist.
    await fake.compact("nodes")
    await fake.put("nodes", node("node-a"), silently=True)
    await changes.until(lambda: "node-a" in inventory.nodes)
    assert inventory.synced
    assert fake.count("/api/v1/nodes", watch=False) == 2


async def test_a_failing_change_callback_does_not_stop_the_inventory(
    fake: FakeKubeApi, running: Callable[..., KubeInventory]
) -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise RuntimeError("listener bug")

    inventory = await started(running(on_change=broken))
    await fake.put("nodes", node("node-a"))
    await fake.put("nodes", node("node-b"))
    await Changes().until(lambda: len(inventory.nodes) == 2)
    assert len(calls) >= 2


async def test_change_callback_fires_only_for_real_changes(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a"))
    inventory = await started(running())
    assert changes.calls == 1
    # A status heartbeat that changes nothing the inventory keeps is not a change.
    same = node("node-a")
    same["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-11-26T12:00:00Z"
    await fake.put("nodes", same)
    await fake.put("nodes", node("node-b"))
    await changes.until(lambda: "node-b" in inventory.nodes)
    assert changes.calls == 2


async def test_snapshots_handed_out_do_not_change_under_the_reader(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a"))
    inventory = await started(running())
    before = inventory.nodes
    await fake.put("nodes", node("node-b"))
    await changes.until(lambda: "node-b" in inventory.nodes)
    assert set(before) == {"node-a"}
    with pytest.raises(TypeError):
        before["x"] = before["node-a"]  # type: ignore[index]


async def test_extra_region_key_is_applied_to_watched_nodes(
    fake: FakeKubeApi, running: Callable[..., KubeInventory]
) -> None:
    await fake.put("nodes", node("rack-1", None, labels={"example.com/site": "DE"}))
    inventory = await started(running(extra_region_key="example.com/site"))
    assert (inventory.nodes["rack-1"].region, inventory.nodes["rack-1"].region_label) == (
        "DE",
        "example.com/site",
    )


# --- pods ---------------------------------------------------------------------------------------


async def test_pods_are_not_watched_unless_asked(
    fake: FakeKubeApi, running: Callable[..., KubeInventory]
) -> None:
    await fake.put("pods", read_replica("read-0"))
    inventory = await started(running())
    assert dict(inventory.pods) == {}
    assert not any(p.endswith("/pods") for p, _ in fake.requests)


async def test_only_stellar_pods_are_kept_and_followed(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a"))
    await fake.put("pods", read_replica("read-0", "node-a"))
    await fake.put("pods", pod("nginx", "web", "node-a", app="nginx"))
    await fake.put(
        "pods",
        pod(
            "core-0",
            "stellar",
            "node-a",
            **{
                "app.kubernetes.io/name": "stellar-node",
                "app.kubernetes.io/component": "validator",
            },
        ),
    )
    inventory = await started(running(watch_pods=True))
    assert set(inventory.pods) == {("stellar", "read-0"), ("stellar", "core-0")}
    assert inventory.pods[("stellar", "read-0")].node_name == "node-a"
    assert inventory.pods[("stellar", "read-0")].cpu_request_millis == 500

    await fake.put("pods", read_replica("read-1"))
    await changes.until(lambda: ("stellar", "read-1") in inventory.pods)
    assert inventory.pods[("stellar", "read-1")].phase == "Pending"

    # Relabelled so it no longer is a Stellar pod: it leaves the inventory.
    await fake.put("pods", pod("read-1", "stellar", None, app="other"))
    await changes.until(lambda: ("stellar", "read-1") not in inventory.pods)

    await fake.delete("pods", "read-0", "stellar")
    await changes.until(lambda: ("stellar", "read-0") not in inventory.pods)
    assert set(inventory.pods) == {("stellar", "core-0")}


async def test_pod_watch_can_be_limited_to_a_namespace_and_selector(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("pods", read_replica("read-0", namespace="stellar"))
    await fake.put("pods", read_replica("read-0", namespace="other"))
    await fake.put("pods", pod("horizon-0", "stellar", None, **{APP_NAME: "horizon"}))
    inventory = await started(
        running(watch_pods=True, pod_namespace="stellar", pod_selectors=("stellar.org/role",))
    )
    assert set(inventory.pods) == {("stellar", "read-0")}
    pod_requests = [q for p, q in fake.requests if p == "/api/v1/namespaces/stellar/pods"]
    assert pod_requests
    assert all(q["labelSelector"] == "stellar.org/role" for q in pod_requests)

    await fake.put("pods", read_replica("read-1", namespace="other"))
    await fake.put("pods", read_replica("read-2", namespace="stellar"))
    await changes.until(lambda: ("stellar", "read-2") in inventory.pods)
    assert ("other", "read-1") not in inventory.pods


async def test_pods_matching_any_selector_are_kept_until_none_matches(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    operator = {APP_NAME: "stellar-node", "app.kubernetes.io/component": "validator"}
    await fake.put("pods", pod("core-0", "stellar", "node-a", **operator))
    await fake.put("pods", pod("read-0", "stellar", "node-a", **operator, **ROLE))
    await fake.put("pods", pod("nginx", "web", "node-a", app="nginx"))
    inventory = await started(running(watch_pods=True))
    assert set(inventory.pods) == {("stellar", "core-0"), ("stellar", "read-0")}
    selectors = {q.get("labelSelector") for p, q in fake.requests if p == "/api/v1/pods"}
    assert selectors == set(STELLAR_POD_SELECTORS)
    await changes.until(lambda: fake.open_watches["pods"] == len(STELLAR_POD_SELECTORS))

    # Still a read replica by its role label, no longer an operator pod: kept.
    await fake.put("pods", pod("read-0", "stellar", "node-b", **ROLE))
    await changes.until(lambda: inventory.pods[("stellar", "read-0")].node_name == "node-b")
    # Neither selector matches any more: gone, as from a single watch.
    await fake.put("pods", pod("read-0", "stellar", "node-b", app="other"))
    await changes.until(lambda: ("stellar", "read-0") not in inventory.pods)
    assert set(inventory.pods) == {("stellar", "core-0")}


async def test_synced_waits_for_both_nodes_and_pods(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a"))
    fake.fail_next["pods"] = [(403, "Forbidden")] * 1000
    inventory = running(watch_pods=True)
    await inventory.start()
    await changes.until(lambda: "node-a" in inventory.nodes)
    await changes.until(lambda: fake.count("/api/v1/pods", watch=False) >= 2)
    # The fake counts a request before its answer reaches the watch: wait for the answer.
    await changes.until(lambda: inventory.last_error is not None)
    assert not inventory.synced
    assert inventory.last_error is not None
    # One watch per default selector, each failing on its own; whichever failed last is named.
    assert inventory.last_error.startswith("pods[")
    assert "]: KubeApiError: HTTP 403" in inventory.last_error

    fake.fail_next["pods"].clear()
    assert await inventory.wait_synced(WAIT)
    assert inventory.last_error is None


async def test_stop_ends_the_watches_and_keeps_the_last_state(
    fake: FakeKubeApi, running: Callable[..., KubeInventory], changes: Changes
) -> None:
    await fake.put("nodes", node("node-a"))
    inventory = await started(running(watch_pods=True))
    await changes.until(lambda: fake.open_watches == {"nodes": 1, "pods": 2})
    await inventory.stop()
    await changes.until(lambda: fake.open_watches == {"nodes": 0, "pods": 0})
    await fake.put("nodes", node("node-b"))
    assert set(inventory.nodes) == {"node-a"}
    await inventory.stop()  # stopping twice is harmless


# --- credentials --------------------------------------------------------------------------------


def _kubeconfig(path: Path, server: str, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "reader"}}],
        "current-context": "fake",
    }
    path.write_text(json.dumps(config))
    return path


async def test_api_client_from_a_kubeconfig_file_reaches_the_cluster_with_its_token(
    fake: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = _kubeconfig(tmp_path / "config", fake.base_url, "reader-token")
    await fake.put("nodes", node("node-a"))
    async with await load_api_client(str(path)) as api_client:
        inventory = KubeInventory(api_client, settings=FAST)
        await inventory.start()
        try:
            assert await inventory.wait_synced(WAIT)
        finally:
            await inventory.stop()
    assert set(inventory.nodes) == {"node-a"}
    assert fake.authorizations[0] == "Bearer reader-token"


async def test_kubeconfig_environment_variable_is_used_when_no_file_is_given(
    fake: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = _kubeconfig(tmp_path / "env-config", fake.base_url, "env-token")
    monkeypatch.setenv("KUBECONFIG", str(path))
    async with await load_api_client() as api_client:
        assert api_client.configuration.host == fake.base_url


async def test_missing_kubeconfig_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="absent"):
        await load_api_client(str(tmp_path / "absent"))


async def test_in_cluster_without_a_service_account_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError, match="in-cluster service account"):
        await load_api_client()
