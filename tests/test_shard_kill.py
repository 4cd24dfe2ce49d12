"""A killed `shard` run leaves nothing that looks finished, and the earlier output stays as it was."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._files import file_hashes

REPO_ROOT = Path(__file__).resolve().parents[1]


def _command(out: Path, train: int) -> list[str]:
    sets = [f"shard.out={out}", "data.resolution=32", f"data.rooms.train={train}", "data.rooms.val=2"]
    sets += ["data.rooms.test=2", "shard.workers=0", "shard.samples_per_shard=8"]
    command = [sys.executable, "-m", "stages.shard", "--quiet", "--metrics", str(out.parent / "m.json")]
    for setting in sets:
        command += ["--set", setting]
    return command


@pytest.mark.slow
def test_sigkill_mid_run_keeps_previous_output(tmp_path):
    out = tmp_path / "real"
    subprocess.run(_command(out, 4), cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    before = file_hashes(out)

    process = subprocess.Popen(_command(out, 2000), cwd=REPO_ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        partial = [p for p in tmp_path.glob(".real.tmp-*") if any(p.glob("train-*.tar"))]
        if len(partial) == 1 and len(list(partial[0].glob("train-*.tar"))) >= 2:
            break
        time.sleep(0.05)
    else:
        process.kill()
        raise AssertionError("the shard run never started writing")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert file_hashes(out) == before
    leftovers = list(tmp_path.glob(".real.tmp-*"))
    assert leftovers and not (leftovers[0] / "summary.json").exists()

    subprocess.run(_command(out, 4), cwd=REPO_ROOT, check=True, capture_output=True, timeout=300)
    assert file_hashes(out) == before
    assert not list(tmp_path.glob(".real.*"))
