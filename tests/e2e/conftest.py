"""Fixtures for the end-to-end tests: one real control plane and one fake cloud fleet per session,
a real Karmada per module that asks for one.

The control plane starts once per session (``make e2e`` builds the binaries first); every test
gets its own kubernetes-asyncio client and, when it asks for one, its own namespace. A module
that defines a ``fake_carbon_api`` fixture gets that API served (``carbon_api``) and the webhook
running on it (``webhook``) and the reporter (``reporter``), once per module. A failed
test's report carries the tail of every component log, and the whole log directory is kept when
anything failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s

from tests.e2e.carbon_api import CarbonApiThread, custom_api_carbon_env
from tests.e2e.chart import Helm
from tests.e2e.cluster import Binaries, ControlPlane
from tests.e2e.fleet import FakeNode, create_fake_nodes, fake_fleet
from tests.e2e.karmada import Karmada
from tests.e2e.karmada_pool import member_clients
from tests.e2e.kube import fresh_namespace
from tests.e2e.processes import logs_on_failure
from tests.e2e.services import LocalReporter, LocalWebhook
from tests.fakes.custom_api import FakeCustomApi

_CONTROL_PLANE = pytest.StashKey[ControlPlane]()
_KEPT_LOGS = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, ready to use."""
    control_plane = ControlPlane(Binaries.locate())
    control_plane.start()
    request.config.stash[_CONTROL_PLANE] = control_plane
    try:
        yield control_plane
    finally:
        del request.config.stash[_CONTROL_PLANE]
        failed = request.session.testsfailed > 0
        control_plane.stop(keep_workdir=failed)
        if failed:
            _keep_logs(request.config, str(control_plane.logs_dir))


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    """A kubeconfig file for the admin identity (bearer token, the cluster CA)."""
    return control_plane.kubeconfig_path


@pytest.fixture(scope="session")
def fake_nodes(control_plane: ControlPlane) -> tuple[FakeNode, ...]:
    """Two Ready, schedulable kwok nodes in each of nine AWS, GCP and Azure regions."""
    nodes = fake_fleet()
    create_fake_nodes(control_plane, nodes)
    return nodes


@pytest.fixture(scope="module")
def karmada(request: pytest.FixtureRequest) -> Iterator[Karmada]:
    """Karmada with three member clusters (AWS us-west-2, GCP europe-west1, Azure
    southeastasia: three grid zones) joined in Push mode and Ready. Module-scoped: its nineteen
    processes are gone before the next module starts."""
    karmada = Karmada(Binaries.locate())
    karmada.start()
    failures = request.session.testsfailed
    try:
        with logs_on_failure(request.config, karmada):
            yield karmada
    finally:
        failed = request.session.testsfailed > failures
        karmada.stop(keep_workdir=failed)
        if failed:
            _keep_logs(request.config, f"{karmada.workdir}/*/logs")


@pytest.fixture
async def karmada_api(karmada: Karmada) -> AsyncIterator[k8s.ApiClient]:
    """A kubernetes-asyncio client as the Karmada API server's admin, closed after the test."""
    async with k8s.ApiClient(karmada.configuration()) as api:
        yield api


@pytest.fixture
async def member_apis(karmada: Karmada) -> AsyncIterator[dict[str, k8s.ApiClient]]:
    """A client as admin of each member cluster, by name, closed after the test."""
    async with member_clients(karmada) as apis:
        yield apis


@pytest.fixture(scope="module")
def helm(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The helm binary built with the control plane, on its admin kubeconfig (module-scoped, so a
    module with a control plane of its own gets a helm for it)."""
    return Helm(
        control_plane.binaries.path("helm"),
        control_plane.kubeconfig_path,
        tmp_path_factory.mktemp("helm"),
    )


@pytest.fixture
async def kube_api(control_plane: ControlPlane) -> AsyncIterator[k8s.ApiClient]:
    """A kubernetes-asyncio client as cluster admin, closed after the test."""
    async with k8s.ApiClient(control_plane.configuration()) as api:
        yield api


@pytest.fixture
async def namespace(kube_api: k8s.ApiClient) -> AsyncIterator[str]:
    """A fresh namespace, ready for pods, deleted after the test."""
    async with fresh_namespace(kube_api) as name:
        yield name


@pytest.fixture(scope="module")
def carbon_api(fake_carbon_api: FakeCustomApi) -> Iterator[CarbonApiThread]:
    """The module's ``fake_carbon_api`` on loopback, from a thread (it can be put in an outage)."""
    with CarbonApiThread(fake_carbon_api) as api:
        yield api


@pytest.fixture(scope="module")
def webhook(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    carbon_api: CarbonApiThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalWebhook]:
    """``python -m webhook`` on ``carbon_api``, registered for namespaces ``serve_namespace``
    labels; its log tail goes into the report of every failed test of the module."""
    module = request.module.__name__.rpartition(".")[2].replace("_", "-")
    with LocalWebhook(
        control_plane,
        name=f"{module}.carbon.stellar.org",
        carbon=custom_api_carbon_env(carbon_api),
        log_dir=tmp_path_factory.mktemp("webhook-logs"),
    ) as webhook:
        assert webhook.service is not None
        with logs_on_failure(request.config, webhook.service):
            yield webhook


@pytest.fixture(scope="module")
def reporter(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    carbon_api: CarbonApiThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalReporter]:
    """``python -m reporter`` on ``carbon_api``, watching the control plane's nodes and pods."""
    with (
        LocalReporter(
            control_plane,
            carbon=custom_api_carbon_env(carbon_api),
            log_dir=tmp_path_factory.mktemp("reporter-logs"),
        ) as reporter,
        logs_on_failure(request.config, reporter.service),
    ):
        yield reporter


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    control_plane = item.config.stash.get(_CONTROL_PLANE, None)
    if report.failed and control_plane is not None:
        report.sections.append(("control plane logs (tail)", control_plane.log_tail()))
    return report


def _keep_logs(config: pytest.Config, logs: str) -> None:
    config.stash.setdefault(_KEPT_LOGS, []).append(logs)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for logs in terminalreporter.config.stash.get(_KEPT_LOGS, []):
        terminalreporter.write_line(f"control plane logs kept in {logs}")
