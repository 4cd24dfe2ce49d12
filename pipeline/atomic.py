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
from pipeline.locks import output_lock


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def usual_mode(directory: bool = False) -> int:
    """The mode ``open``/``mkdir`` would give (0644/0755 under the usual umask): ``mkstemp`` and
    ``mkdtemp`` create 0600/0700, which would make outputs unreadable to other users."""
    return (0o777 if directory else 0o666) & ~_umask()


def temporary_sibling(path: Path) -> str:
    """A new empty file ``.<name>.<pid>-<random>.tmp`` beside ``path``, with the usual mode; its name.

    Temporaries of ``path`` that a dead process left (killed mid-write) are removed first; a live
    process's stay.
    """
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(pid):
            stale.unlink(missing_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.fchmod(handle, usual_mode())
    os.close(handle)
    return tmp_name


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove a file can be written in it, before any work: a read-only
    mount, a full disk or a file in the way then fails at once (``OSError`` naming the path), not after
    an epoch of training."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.unlink(temporary_sibling(folder / ".write-probe"))
    return folder


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = temporary_sibling(path)
    handle = os.open(tmp_name, os.O_WRONLY)
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
def atomic_output_dir(target: str | Path, marker: str, *, writer: str, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target``.

    ``marker`` is a JSON file the writer puts in every folder it completes, with ``"writer":
    writer`` in it. An existing ``target`` whose marker does not say so was not made by this
    writer (a common file name proves nothing): it is kept and :class:`OutputExistsError` raised,
    unless ``force``. On any error the temporary folder is removed and ``target`` stays as it was.
    A killed process leaves only a hidden ``.<name>.tmp-*`` folder, which the next run removes; a
    crash between the two renames of the swap leaves ``.<name>.old-*``, which the next run puts
    back if nothing took its place.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(target, writer):  # one writer at a time, released if this process dies
        _remove_stale_temporaries(target)
        _check_replaceable(target, marker, writer, force)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
        os.chmod(tmp, usual_mode(directory=True))
        try:
            yield tmp
            if not (tmp / marker).is_file():
                raise RuntimeError(f"writer did not create its marker {marker} in {tmp}")
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def written_by(folder: Path, marker: str, writer: str) -> bool:
    """Whether ``folder/marker`` is a JSON object that names ``writer`` as its writer."""
    try:
        value = json.loads((folder / marker).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and value.get("writer") == writer


def _check_replaceable(target: Path, marker: str, writer: str, force: bool) -> None:
    if not target.exists() or force:
        return
    if target.is_dir() and (not any(target.iterdir()) or written_by(target, marker, writer)):
        return
    raise OutputExistsError(
        f"{target} exists and was not written by this stage (no {marker} naming writer {writer!r} "
        "in it); move it away or pass --force to replace it"
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
    """Clean up after killed runs (their process is gone; a live run's files stay): remove their
    half-built ``tmp`` folders, and put an ``old`` output back when a crash between the two renames
    of the swap left ``target`` missing (else it is the replaced output, and goes)."""
    for kind in ("old", "tmp"):
        for stale in sorted(target.parent.glob(f".{target.name}.{kind}-*")):
            pid = stale.name.rsplit(f".{kind}-", 1)[1].split("-", 1)[0]
            if _process_alive(pid):
                continue
            if kind == "old" and not (target.exists() or target.is_symlink()):
                os.replace(stale, target)
            elif stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


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
