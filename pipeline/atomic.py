"""Write outputs so that nothing half-written ever looks finished.

Files are written to a temporary name in the same folder and renamed into place; folders are
built under a hidden temporary name and swapped in only when complete. A folder is replaced
only if it carries the marker file of the writer that made it, so a stage never deletes what a
user made.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import OutputExistsError


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def write_json_atomic(path: str | Path, value: Any) -> Path:
    """Write ``value`` as indented, key-sorted JSON (stable bytes for equal values)."""
    return write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def atomic_output_dir(target: str | Path, marker: str, *, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target``.

    ``marker`` is a file name the writer puts in every folder it completes. An existing
    ``target`` without that marker was not made by this writer: it is kept and
    :class:`OutputExistsError` raised, unless ``force``. On any error the temporary folder is
    removed and ``target`` stays as it was. A killed process leaves only a hidden
    ``.<name>.tmp-*`` folder, which the next run removes.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(target, marker, force)
    _remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        if not (tmp / marker).is_file():
            raise RuntimeError(f"writer did not create its marker {marker} in {tmp}")
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_replaceable(target: Path, marker: str, force: bool) -> None:
    if not target.exists() or force:
        return
    if target.is_dir() and (not any(target.iterdir()) or (target / marker).is_file()):
        return
    raise OutputExistsError(
        f"{target} exists and was not written by this stage (no {marker} in it); "
        "move it away or pass --force to replace it"
    )


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = None
    if target.exists() or target.is_symlink():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def _remove_stale_temporaries(target: Path) -> None:
    """Remove temporaries left by killed runs (their process is gone); a live run's stay."""
    for kind in ("tmp", "old"):
        for stale in target.parent.glob(f".{target.name}.{kind}-*"):
            pid = stale.name.rsplit(f".{kind}-", 1)[1].split("-", 1)[0]
            if stale.is_dir() and not _process_alive(pid):
                shutil.rmtree(stale, ignore_errors=True)


def _process_alive(pid_text: str) -> bool:
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
