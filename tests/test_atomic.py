"""Atomic outputs: nothing half-written looks finished; nothing a user made is deleted."""

from __future__ import annotations

import os

import pytest

from pipeline.atomic import atomic_output_dir, write_bytes_atomic
from pipeline.errors import OutputExistsError


def test_failed_write_keeps_previous_output(tmp_path):
    target = tmp_path / "out"
    with atomic_output_dir(target, "done.json") as folder:
        (folder / "a.txt").write_text("v1")
        (folder / "done.json").write_text("{}")
    with pytest.raises(RuntimeError, match="boom"), atomic_output_dir(target, "done.json") as folder:
        (folder / "a.txt").write_text("v2")
        raise RuntimeError("boom")
    assert (target / "a.txt").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_missing_marker_means_not_finished(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="marker"), atomic_output_dir(target, "done.json") as folder:
        (folder / "a.txt").write_text("partial")
    assert not target.exists()


def test_foreign_folder_is_never_replaced_without_force(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine.txt").write_text("user data")
    with (
        pytest.raises(OutputExistsError, match=r"out exists and was not written by this stage"),
        atomic_output_dir(target, "done.json") as folder,
    ):
        (folder / "done.json").write_text("{}")
    assert (target / "mine.txt").read_text() == "user data"
    with atomic_output_dir(target, "done.json", force=True) as folder:
        (folder / "done.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["done.json"]


def test_stale_temporary_of_dead_process_is_removed(tmp_path):
    stale = tmp_path / ".out.tmp-999999999-abc"
    stale.mkdir()
    live = tmp_path / f".out.tmp-{os.getppid()}-abc"
    live.mkdir()
    with atomic_output_dir(tmp_path / "out", "done.json") as folder:
        (folder / "done.json").write_text("{}")
    assert not stale.exists()
    assert live.exists()


def test_write_bytes_atomic_leaves_no_temporaries(tmp_path):
    path = write_bytes_atomic(tmp_path / "sub" / "f.bin", b"abc")
    assert path.read_bytes() == b"abc"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]
