"""``python -m tiers`` wiring: on mock carbon data against a fake cluster, nodes get tier labels;
bad settings stop it with one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared.scoring.tiers import TIER_LABEL
from shared.settings import CarbonSettings
from tests.fakes.kube_api import WAIT, FakeKubeApi, node
from tests.unit.tiers.builders import NOW
from tiers.__main__ import main, serve
from tiers.labeller import FIELD_MANAGER
from tiers.settings import TierMode, TiersSettings


def kubeconfig(path: Path, server: str) -> Path:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tiers", "user": {"token": "tiers-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tiers"}}],
        "current-context": "fake",
    }
    path.write_text(json.dumps(config))
    return path


async def test_the_component_labels_the_clusters_nodes_and_reports_ready(
    fake: FakeKubeApi, tmp_path: Path, unused_tcp_port: int
) -> None:
    for name, region in (("a", "eu-north-1"), ("b", "ap-south-1"), ("c", None)):
        await fake.put("nodes", node(name, region))
    settings = TiersSettings(
        mode=TierMode.LABEL,
        interval=0.05,
        health_port=unused_tcp_port,
        bind_address="127.0.0.1",
        kubeconfig=str(kubeconfig(tmp_path / "config", fake.base_url)),
        carbon=CarbonSettings(providers=("mock",), mock_clock=NOW),
    )
    stopping = asyncio.Event()
    running = asyncio.create_task(serve(settings, stopping=stopping))
    try:
        async with asyncio.timeout(4 * WAIT):
            while {p.name for p in fake.patches} != {"a", "b"}:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{unused_tcp_port}"
            async with session.get(f"{base}/readyz") as ready:
                assert ready.status == 200
            async with session.get(f"{base}/metrics") as metrics:
                assert 'stellar_carbon_tiers_mode{mode="label"} 1.0' in await metrics.text()
    finally:
        stopping.set()
        await running
    labels = {name: obj["metadata"]["labels"] for (_, name), obj in fake.objects["nodes"].items()}
    assert TIER_LABEL not in labels["c"]
    assert {labels["a"][TIER_LABEL], labels["b"][TIER_LABEL]} <= {str(t) for t in range(10)}
    assert {p.field_manager for p in fake.patches} == {FIELD_MANAGER}
    assert fake.authorizations[0] == "Bearer tiers-token"


def test_a_bad_setting_exits_with_a_message_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STELLAR_CARBON_TIERS_MODE", "apply")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "stellar-carbon-tiers: STELLAR_CARBON_TIERS_MODE: expected one of dry-run, label, "
        "got 'apply'\n"
    )
