"""The HTTPS site's SSL context and hot reload of its certificate.

The context is created once and handed to the aiohttp site; a new pair is loaded into that same
live context with ``load_cert_chain``. OpenSSL copies the certificate into each new connection at
handshake time, so new handshakes get the new pair while open connections keep theirs: no restart,
no dropped requests. ``CertificateFiles`` polls the mounted ``tls.crt``/``tls.key`` by content
digest, because mounted Secrets change through a symlink swap that sends no inotify event on the
files.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path

from shared.core.tasks import cancel_and_wait
from webhook.certs import KeyPair
from webhook.errors import CertificateError

logger = logging.getLogger(__name__)

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"

_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_context(min_version: str = "1.2") -> ssl.SSLContext:
    """A server-side context with no certificate yet; TLS 1.2 or newer."""
    try:
        minimum = _MIN_VERSIONS[min_version]
    except KeyError:
        raise CertificateError(f"unsupported minimum TLS version {min_version!r}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum
    return context


def load_pair(context: ssl.SSLContext, pair: KeyPair) -> None:
    """Install ``pair`` in ``context`` (live or new); leaves the context untouched on error.

    ``load_cert_chain`` only reads files, so the PEMs go through a private temporary directory.
    The pair is tried on a scratch context first: a mismatched key must not half-replace the
    serving certificate.
    """
    with tempfile.TemporaryDirectory(prefix="stellar-carbon-tls-") as scratch:
        cert_path = Path(scratch, CERT_FILE)
        key_path = Path(scratch, KEY_FILE)
        cert_path.write_bytes(pair.cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as key_file:
            key_file.write(pair.key_pem)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError) as e:
            # The OpenSSL reason is enough; it never contains key material.
            raise CertificateError(f"certificate and key do not form a usable pair: {e}") from e
        context.load_cert_chain(cert_path, key_path)


class CertificateFiles:
    """Serve ``tls.crt``/``tls.key`` from a directory and reload them when their content changes."""

    def __init__(
        self,
        context: ssl.SSLContext,
        directory: str | os.PathLike[str],
        *,
        interval: float,
        on_reload: Callable[[KeyPair], None] | None = None,
    ) -> None:
        self._context = context
        self._cert_path = Path(directory, CERT_FILE)
        self._key_path = Path(directory, KEY_FILE)
        self._interval = interval
        self._on_reload = on_reload
        self._digest: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.reloads = 0
        """How many times a changed pair was installed after the first load."""

    def read(self) -> KeyPair:
        try:
            return KeyPair(self._cert_path.read_bytes(), self._key_path.read_bytes())
        except OSError as e:
            raise CertificateError(
                f"cannot read {e.filename or self._cert_path.parent}: {e.strerror}"
            ) from e

    def load(self) -> KeyPair:
        """The first load, at startup: errors propagate so the process fails loudly."""
        pair = self.read()
        load_pair(self._context, pair)
        self._digest = pair.digest
        logger.info("serving certificate loaded from %s", self._cert_path.parent)
        return pair

    def check(self) -> bool:
        """Reload if the files changed; True when a new pair was installed."""
        try:
            pair = self.read()
        except CertificateError as e:
            logger.warning("keeping the current certificate: %s", e)
            return False
        digest = pair.digest
        if digest == self._digest:
            return False
        # Remember even a bad pair: the kubelet may be between writes, and the next change of
        # either file changes the digest again. Logging once per bad state is enough.
        self._digest = digest
        try:
            load_pair(self._context, pair)
        except CertificateError as e:
            logger.warning("keeping the current certificate: %s", e)
            return False
        self.reloads += 1
        logger.info("serving certificate reloaded from %s", self._cert_path.parent)
        if self._on_reload is not None:
            self._on_reload(pair)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.check()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="certificate-files")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
