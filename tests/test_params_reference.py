"""Each key is documented once (on its field); docs/params.md and params.yaml are written from there."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Params, load_params, training_identity
from pipeline.data.reader import shard_resolution
from pipeline.errors import ShardError
from pipeline.params_reference import params_markdown, params_yaml, undocumented_keys
from stages import params as params_command

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_every_key_has_a_description():
    assert undocumented_keys() == []


def test_reference_page_and_params_yaml_are_in_sync(capsys):
    assert params_command.main(["--check", "--root", str(REPO_ROOT)]) == 0, capsys.readouterr().out
    assert load_params(REPO_ROOT / "params.yaml") == Params()


def test_check_reports_a_stale_file_and_a_write_fixes_it(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "params.yaml").write_text(params_yaml().replace("# NT-Xent temperature", "# edited"))
    (tmp_path / "docs" / "params.md").write_text(params_markdown())
    assert params_command.main(["--check", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "# edited" in captured.out and "params.yaml out of date" in captured.err
    assert params_command.main(["--root", str(tmp_path)]) == 0
    assert params_command.main(["--check", "--root", str(tmp_path)]) == 0


def test_yaml_comments_and_page_carry_the_field_descriptions():
    text = params_yaml()
    assert "  device: auto                # auto (CUDA when available) | cpu | cuda | cuda:N" in text
    page = params_markdown()
    assert "| `runtime.threads` | `0` | free | torch CPU threads (0 = torch's default) |" in page
    assert "| `gan.g_lr` | `0.0002` |  |" in page


def test_shared_sections_replace_the_per_stage_copies():
    fields = {name: set(type(section).model_fields) for name, section in Params()}
    for stage in ("train_mt", "gan", "mgm", "evaluate", "synthesize"):
        assert fields[stage].isdisjoint({"device", "threads", "workers"}), stage
    assert "resolution" not in fields["gan"]
    assert {"weights", "weighting", "normal", "weak_consistency"} == fields["loss"]
    assert fields["mgm"].isdisjoint({"temperature", "simclr_dim"}) and fields["mix"].isdisjoint({"ssl_dim"})
    assert training_identity(Params().runtime) == {}  # nothing in runtime restarts a training run


def test_stages_after_shard_read_the_resolution_from_the_shard_set():
    assert shard_resolution({"resolution": 32}, "x") == 32
    with pytest.raises(ShardError, match=r"x/summary.json records no resolution: re-shard"):
        shard_resolution({}, "x")
