"""``python -m webhook.devcert DIR``: a throwaway CA and serving pair for running locally.

Writes ``ca.crt``, ``tls.crt`` and ``tls.key`` into DIR (the layout ``files`` TLS mode reads), valid
for ``localhost``, ``127.0.0.1``, ``::1`` and the configured Service names, so ``make run`` and
``curl --cacert DIR/ca.crt https://localhost:8443/mutate`` work without a cluster. Not for
production: there, use cert-manager or the ``self-managed`` mode.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.core.clock import utcnow
from webhook.certs import generate_ca, issue_serving
from webhook.settings import WebhookSettings

LOCAL_NAMES = ("localhost",)
LOCAL_IPS = ("127.0.0.1", "::1")


def write_dev_certificates(directory: Path, *, days: int = 30) -> Path:
    """Write the CA certificate and the serving pair into ``directory``; returns the CA path."""
    settings = WebhookSettings.from_env(os.environ)
    now = utcnow()
    ca = generate_ca(common_name="stellar-carbon-dev-ca", now=now, days=days)
    pair = issue_serving(
        ca,
        dns_names=(*LOCAL_NAMES, *settings.dns_names),
        ip_addresses=(*LOCAL_IPS, *settings.extra_ips),
        now=now,
        days=days,
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    (directory / "tls.crt").write_bytes(pair.cert_pem)
    fd = os.open(directory / "tls.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(pair.key_pem)
    return directory / "ca.crt"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webhook.devcert",
        description="Write a local-only CA and serving certificate for the webhook.",
    )
    parser.add_argument("directory", type=Path, help="where to write ca.crt, tls.crt, tls.key")
    parser.add_argument("--days", type=int, default=30, help="validity in days (default 30)")
    args = parser.parse_args(argv)
    ca_path = write_dev_certificates(args.directory, days=args.days)
    print(f"wrote {args.directory}/tls.crt, tls.key and {ca_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
