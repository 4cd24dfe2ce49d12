"""Atomic outputs: nothing half-written looks finished; nothing a user made is deleted."""

from __future__ import annotations

import json
import os
import stat

import pytest

from pipeline.atomic import atomic_output_dir, write_bytes_atomic
from pipeline.checkpoint import save_checkpoint
from pipeline.errors import OutputExistsError

WRITER = "tests"
MARK = json.dumps({"writer": WRITER})


def _write(target, text="v1", **kwargs):
    with atomic_output_dir(target, "done.json", writer=WRITER, **kwargs) as folder:
        (folder / "a.txt").write_text(text)
        (folder / "done.json").write_text(MARK)


def test_failed_write_keeps_previous_output(tmp_path):
    target = tmp_path / "out"
    _write(target)
    with (
        pytest.raises(RuntimeError, match="boom"),
        atomic_output_dir(target, "done.json", writer=WRITER) as f,
    ):
        (f / "a.txt").write_text("v2")
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    _write(target, "v3")  # its own complete output is replaced
    assert (target / "a.txt").read_text() == "v3"


def test_missing_marker_means_not_finished(tmp_path):
    target = tmp_path / "out"
    with (
        pytest.raises(RuntimeError, match="marker"),
        atomic_output_dir(target, "done.json", writer=WRITER) as f,
    ):
        (f / "a.txt").write_text("partial")
    assert not target.exists()


@pytest.mark.parametrize("marker_text", [None, "{}", '{"writer": "someone else"}', "not json"])
def test_foreign_folder_is_never_replaced_without_force(tmp_path, marker_text):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("user data")
    if marker_text is not None:  # a file of the marker's name proves nothing by itself
        (target / "done.json").write_text(marker_text)
    with pytest.raises(OutputExistsError, match=r"out exists and was not written by this stage"):
        _write(target)
    assert (target / "mine.txt").read_text() == "user data"
    _write(target, force=True)
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "done.json"]


def test_stale_temporary_of_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".out.tmp-999999999-abc"
    stale.mkdir()
    live = tmp_path / f".out.tmp-{os.getppid()}-abc"
    live.mkdir()
    _write(tmp_path / "out")
    assert not stale.exists()
    assert live.exists()


def test_crash_between_the_two_renames_restores_the_old_output(tmp_path):
    target = tmp_path / "out"
    _write(target, "old")
    os.replace(target, tmp_path / ".out.old-999999999")  # killed after the first rename of a swap
    with pytest.raises(RuntimeError, match="boom"), atomic_output_dir(target, "done.json", writer=WRITER):
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "old"  # put back, not deleted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    os.replace(target, tmp_path / ".out.old-999999998")
    _write(target, "new")
    assert (target / "a.txt").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_bytes_atomic_leaves_no_temporaries(tmp_path):
    path = write_bytes_atomic(tmp_path / "sub" / "f.bin", b"abc")
    assert path.read_bytes() == b"abc"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


def test_outputs_get_the_usual_modes(tmp_path):
    previous = os.umask(0o022)
    try:
        _write(tmp_path / "out")
        file = write_bytes_atomic(tmp_path / "m.json", b"{}")
        checkpoint = save_checkpoint({"step": 1}, tmp_path / "last.pt")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE(file.stat().st_mode) == 0o644
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o644


def test_a_file_write_removes_what_a_killed_writer_of_that_file_left(tmp_path):
    dead = tmp_path / ".m.json.999999999-abc.tmp"  # a killed process's half-written metrics file
    live = tmp_path / f".m.json.{os.getppid()}-def.tmp"  # a live writer's: left alone
    other = tmp_path / ".n.json.999999999-abc.tmp"  # another file's: not this write's business
    for path in (dead, live, other):
        path.write_text("partial")
    write_bytes_atomic(tmp_path / "m.json", b"{}")
    assert not dead.exists() and live.exists() and other.exists()
    assert (tmp_path / "m.json").read_bytes() == b"{}"
