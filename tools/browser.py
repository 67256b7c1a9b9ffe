"""Headless Chromium for the dashboard: the page as a person's browser renders it.

Chromium runs its own ``--dump-dom`` (the DOM after the page's script has run) and
``--screenshot``; ``--virtual-time-budget`` lets the page's requests to the reporter finish before
the DOM is read. The flags keep it off the network (no background services, no updates, no sync)
and in a fresh profile, so nothing but the page under test is loaded.

The browser is ``STELLAR_CARBON_CHROMIUM`` if set, else the first of ``chromium``,
``chromium-browser``, ``google-chrome`` or ``google-chrome-stable`` on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

CANDIDATES: Final = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS: Final = (
    "--headless",
    "--no-sandbox",  # containers and CI run as root, where Chromium's sandbox will not start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
VIRTUAL_TIME_MS: Final = 15_000
INSTALL_HINT: Final = (
    "no Chromium found: install Debian's `chromium` package (or Google Chrome), or set "
    "STELLAR_CARBON_CHROMIUM to the browser's executable"
)


class BrowserMissing(RuntimeError):
    """No headless-capable Chromium on this machine."""


def find_chromium() -> str:
    explicit = os.environ.get("STELLAR_CARBON_CHROMIUM")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise BrowserMissing(f"STELLAR_CARBON_CHROMIUM={explicit} is not an executable")
        return explicit
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserMissing(INSTALL_HINT)


def _run(url: str, *extra: str, timeout: float) -> bytes:
    with tempfile.TemporaryDirectory(prefix="stellar-carbon-chromium-") as profile:
        completed = subprocess.run(
            [
                find_chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                *extra,
                url,
            ],
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=profile,
        )
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"chromium exited with {completed.returncode}: {tail}")
    return completed.stdout


def rendered_dom(url: str, *, timeout: float = 60.0) -> str:
    """The page's DOM, serialised, after its script has run."""
    return _run(url, "--dump-dom", timeout=timeout).decode()


def screenshot(url: str, path: Path, *, width: int = 1280, height: int = 1400) -> None:
    """A PNG of the page at ``width`` × ``height`` CSS pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(url, f"--window-size={width},{height}", f"--screenshot={path.resolve()}", timeout=60.0)
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot to {path}")
