"""Webhook settings from ``STELLAR_CARBON_WEBHOOK_*``: defaults, parsing, named errors."""

from __future__ import annotations

import pytest

from shared.core.errors import ConfigError
from webhook.settings import InventorySource, Policy, TlsMode, WebhookSettings

P = "STELLAR_CARBON_WEBHOOK_"


def test_defaults_match_the_documented_ports_and_modes() -> None:
    settings = WebhookSettings.from_env({})

    assert (settings.port, settings.health_port) == (8443, 8080)
    assert settings.tls_mode is TlsMode.FILES
    assert settings.default_policy is Policy.PREFER
    assert settings.inventory is InventorySource.KUBERNETES
    assert settings.max_body_bytes >= 8 * 1024 * 1024


def test_every_variable_is_read() -> None:
    env = {
        P + "PORT": "9443",
        P + "HEALTH_PORT": "9080",
        P + "BIND_ADDRESS": "127.0.0.1",
        P + "TLS_MODE": "self-managed",
        P + "CERT_DIR": "/certs",
        P + "CERT_CHECK_INTERVAL": "5",
        P + "SECRET_NAME": "tls",
        P + "SECRET_NAMESPACE": "certs",
        P + "CONFIG_NAME": "carbon",
        P + "SERVICE_NAME": "svc",
        P + "SERVICE_NAMESPACE": "ns",
        P + "EXTRA_SANS": "localhost, 127.0.0.1,::1,Webhook.Example.com",
        P + "CERT_VALIDITY_DAYS": "90",
        P + "CA_VALIDITY_DAYS": "730",
        P + "ROTATION_CHECK_INTERVAL": "600",
        P + "TLS_MIN_VERSION": "1.3",
        P + "DEFAULT_POLICY": "Require",
        P + "LOW_CARBON_FRACTION": "0.2",
        P + "INVENTORY": "file",
        P + "INVENTORY_FILE": "/nodes.yaml",
        P + "KUBECONFIG": "/kubeconfig",
        P + "MAX_BODY_BYTES": "16777216",
        P + "SHUTDOWN_TIMEOUT": "3",
        P + "LOG_LEVEL": "debug",
        P + "POD_SELECTOR": "app.kubernetes.io/name in (horizon,stellar-core); team=ledger,tier",
        P + "WATCH_ALL_PODS": "true",
    }

    s = WebhookSettings.from_env(env)

    assert (s.port, s.health_port, s.bind_address) == (9443, 9080, "127.0.0.1")
    assert s.tls_mode is TlsMode.SELF_MANAGED
    assert (s.cert_dir, s.cert_check_interval) == ("/certs", 5.0)
    assert (s.secret_name, s.secret_namespace, s.webhook_config_name) == ("tls", "certs", "carbon")
    assert s.dns_names == (
        "svc",
        "svc.ns",
        "svc.ns.svc",
        "svc.ns.svc.cluster.local",
        "localhost",
        "webhook.example.com",
    )
    assert s.extra_ips == ("127.0.0.1", "::1")
    assert (s.cert_validity_days, s.ca_validity_days, s.rotation_check_interval) == (90, 730, 600.0)
    assert s.tls_min_version == "1.3"
    assert s.default_policy is Policy.REQUIRE
    assert s.low_carbon_fraction == 0.2
    assert (s.inventory, s.inventory_file, s.kubeconfig) == (
        InventorySource.FILE,
        "/nodes.yaml",
        "/kubeconfig",
    )
    assert (s.max_body_bytes, s.shutdown_timeout, s.log_level) == (16777216, 3.0, "DEBUG")
    assert s.pod_selector == (
        "app.kubernetes.io/name in (horizon,stellar-core)",
        "team=ledger,tier",
    )
    assert s.watch_all_pods


def test_secret_namespace_follows_the_pod_namespace() -> None:
    settings = WebhookSettings.from_env({"POD_NAMESPACE": "carbon-system"})

    assert settings.service_namespace == "carbon-system"
    assert settings.secret_namespace == "carbon-system"
    assert "stellar-carbon-webhook.carbon-system.svc" in settings.dns_names


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({P + "PORT": "https"}, f"{P}PORT: expected a port 1-65535, got 'https'"),
        ({P + "PORT": "70000"}, f"{P}PORT: expected a port 1-65535, got '70000'"),
        ({P + "HEALTH_PORT": "8443"}, f"{P}HEALTH_PORT: expected a port other than {P}PORT (8443)"),
        (
            {P + "TLS_MODE": "manual"},
            f"{P}TLS_MODE: expected one of files, self-managed, got 'manual'",
        ),
        ({P + "DEFAULT_POLICY": "force"}, f"{P}DEFAULT_POLICY: expected one of prefer, require"),
        ({P + "INVENTORY": "file"}, f"{P}INVENTORY_FILE: required"),
        (
            {P + "TLS_MIN_VERSION": "1.1"},
            f"{P}TLS_MIN_VERSION: expected one of 1.2, 1.3, got '1.1'",
        ),
        (
            {P + "CERT_CHECK_INTERVAL": "nan"},
            f"{P}CERT_CHECK_INTERVAL: expected a number of at least 0.1, got 'nan'",
        ),
        (
            {P + "MAX_BODY_BYTES": "1000"},
            f"{P}MAX_BODY_BYTES: expected an integer of at least 1048576",
        ),
        (
            {P + "CA_VALIDITY_DAYS": "10"},
            f"{P}CA_VALIDITY_DAYS: expected at least {P}CERT_VALIDITY_DAYS (365)",
        ),
        (
            {P + "POD_SELECTOR": " ; "},
            f"{P}POD_SELECTOR: expected label selectors separated by ';', got ';'",
        ),
        (
            {P + "EXTRA_SANS": "https://x"},
            f"{P}EXTRA_SANS: expected comma-separated DNS names and IP addresses, got 'https://x'",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        WebhookSettings.from_env(env)

    assert str(raised.value).startswith(message)


def test_described_settings_are_plain_values() -> None:
    described = WebhookSettings().describe()

    assert described["tls_mode"] == "files"
    assert described["default_policy"] == "prefer"
