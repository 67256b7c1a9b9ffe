"""Child processes of the end-to-end tests: their own process group, gone with pytest, and the
tail of the log each one writes.

The control plane's components and our services run the same way: a process group of their own
so teardown can signal them without touching pytest, and ``PR_SET_PDEATHSIG`` so they die with
pytest when it dies without tearing down.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path
from typing import Final

_PR_SET_PDEATHSIG: Final = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
# Enough bytes per wanted line that even long log lines (apiserver flags, JSON) fit the tail.
_BYTES_PER_LINE: Final = 1000


def own_group_dying_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: runs in the child between fork and exec."""
    os.setpgrp()
    if _libc is not None:
        # SIGKILL because a graceful shutdown can hang once the rest, killed alongside, is gone
        # (an apiserver without etcd).
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of the log at ``path`` (a note instead if it cannot be read)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - lines * _BYTES_PER_LINE))
            data = f.read()
    except OSError as e:
        return f"<unreadable: {e}>"
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
