"""``python -m multicluster`` wiring: on mock carbon data against a fake Karmada API server, an
opted-in policy gets weights, the health site answers, and shutdown gives the Lease up; bad
settings stop it with one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from multicluster.__main__ import main, serve
from multicluster.settings import KarmadaMode, KarmadaSettings
from shared.settings import CarbonSettings
from tests.fakes.karmada_api import FakeKarmadaApi
from tests.fakes.kube_api import WAIT
from tests.unit.multicluster.builders import NOW, policy
from tests.unit.tiers.test_main import kubeconfig


async def test_the_controller_weighs_a_policy_reports_ready_and_releases_the_lease(
    fake: FakeKarmadaApi,
    tmp_path: Path,
    unused_tcp_port: int,
) -> None:
    await fake.put("propagationpolicies", policy())
    settings = KarmadaSettings(
        mode=KarmadaMode.APPLY,
        interval=0.05,
        health_port=unused_tcp_port,
        bind_address="127.0.0.1",
        kubeconfig=str(kubeconfig(tmp_path / "karmada.config", fake.base_url)),
        carbon=CarbonSettings(providers=("mock",), mock_clock=NOW),
    )
    stopping = asyncio.Event()
    running = asyncio.create_task(serve(settings, stopping=stopping, identity="replica-a"))
    try:
        async with asyncio.timeout(4 * WAIT):
            while not fake.applies:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{unused_tcp_port}"
            async with session.get(f"{base}/readyz") as ready:
                assert ready.status == 200
                assert (await ready.json())["leader"] is True
            async with session.get(f"{base}/metrics") as metrics:
                text = await metrics.text()
        assert 'stellar_carbon_karmada_mode{mode="apply"} 1.0' in text
        assert "stellar_carbon_karmada_leader 1.0" in text
    finally:
        stopping.set()
        await running
    written = fake.get("propagationpolicies", "read-pool", "stellar")
    weights = written["spec"]["placement"]["replicaScheduling"]["weightPreference"]
    assert {e["targetCluster"]["clusterNames"][0] for e in weights["staticWeightList"]} == {
        "member-be",
        "member-de",
        "member-us",
    }
    lease = fake.get("leases", "stellar-carbon-karmada", "karmada-system")
    assert lease["spec"]["holderIdentity"] is None
    assert fake.authorizations[0] == "Bearer tiers-token"


def test_a_bad_setting_exits_with_a_message_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STELLAR_CARBON_KARMADA_MODE", "label")
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "stellar-carbon-multicluster: STELLAR_CARBON_KARMADA_MODE: expected one of dry-run, "
        "apply, got 'label'\n"
    )
