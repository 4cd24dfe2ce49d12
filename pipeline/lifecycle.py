"""A stage process ends with the process that started it.

Why: when ``dvc repro`` (or a Prefect worker, or ``torchrun``) is killed, the stage it started would
otherwise go on writing outputs that nobody records, and a rerun would meet a second writer. On Linux
the kernel sends SIGTERM to the stage when its parent dies; SIGTERM becomes a normal exit, so the
stage's ``finally`` blocks (temporary folders, locks) run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from types import FrameType

PR_SET_PDEATHSIG = 1


class Terminated(SystemExit):
    """SIGTERM arrived (the parent is gone, or someone asked the stage to stop)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(128 + signum)


def stop_with_parent(handle_sigterm: bool = True) -> None:
    """Ask for SIGTERM when the parent process dies (Linux; elsewhere nothing). ``handle_sigterm``:
    SIGTERM unwinds the stack (``finally`` blocks run) instead of killing the interpreter outright;
    otherwise SIGTERM gets its default action (worker processes, which their parent cleans up)."""
    signal.signal(signal.SIGTERM, _terminate if handle_sigterm else signal.SIG_DFL)
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def worker_stops_with_parent() -> None:
    """Initializer of a worker pool: the worker ends with the stage that started it."""
    stop_with_parent(handle_sigterm=False)
