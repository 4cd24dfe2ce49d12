"""One writer per output: an exclusive lock per output path, held while a stage writes it.

Why: two runs of one stage on one output (a second terminal, a retried Prefect task, an orphaned
process) would interleave their files. The lock is an ``flock`` on a file outside the data tree
(nothing appears in a DVC-tracked folder), keyed by the output's absolute path; the kernel releases it
when its holder dies, however it dies, so a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import PipelineError

LOCK_FOLDER = Path(tempfile.gettempdir()) / "mgm-pipeline-locks"


class OutputBusyError(PipelineError):
    """Another live process is writing the same output (the message names it and its pid)."""


def lock_path(output: str | Path) -> Path:
    """Where the lock of ``output`` lives (one file per absolute output path)."""
    key = hashlib.sha256(str(Path(output).resolve()).encode()).hexdigest()[:24]
    return LOCK_FOLDER / f"{key}.lock"


@contextlib.contextmanager
def output_lock(output: str | Path, what: str = "a run") -> Iterator[Path]:
    """Hold the lock of ``output`` for the body; :class:`OutputBusyError` at once if another holds it."""
    path = lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 200, 0).decode(errors="replace").strip() or "another process"
            raise OutputBusyError(
                f"{output} is being written by {holder}: wait for it to finish or stop it, then rerun"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{what} (pid {os.getpid()})".encode(), 0)
        yield path
    finally:
        os.close(handle)  # closing releases the lock
