"""Stage entry points: `python -m stages.<name>` and `mgm <name>` share parsing, params and errors."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from stages import COMMANDS
from stages.cli import main as mgm_main

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(*args, cwd=REPO_ROOT):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_stage_help_lists_the_params_arguments(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"stages.{name}").main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--params FILE" in out and "--set KEY=VALUE" in out
    assert "params it reads" in out  # then every key of its sections with default and description


def test_a_stage_help_gives_each_param_its_default_and_description(capsys):
    from pipeline.config import GanParams

    with pytest.raises(SystemExit):
        importlib.import_module("stages.train_gan").main(["--help"])
    out = capsys.readouterr().out
    assert "  gan.steps = 1250\n" in out and "  runtime.device = auto\n" in out
    assert GanParams.model_fields["steps"].description.split(";")[0] in out
    assert "mgm.epochs" not in out  # only the sections the stage reads


def test_python_module_entry_point_runs():
    result = _run(sys.executable, "-m", "stages.train_gan", "--help")
    assert result.returncode == 0, result.stderr
    assert "--params FILE" in result.stdout


def test_mgm_help_lists_commands(capsys):
    assert mgm_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_mgm_unknown_command(capsys):
    assert mgm_main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


def test_bad_param_fails_before_any_work(tmp_path, capsys):
    out = tmp_path / "shards"
    code = mgm_main(["shard", "--set", f"shard.out={out}", "--set", "data.label_fraction=1.5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "mgm shard: error:" in err and "data.label_fraction" in err
    assert not out.exists() and not tmp_path.joinpath("metrics").exists()


def test_missing_importer_path_names_the_param(tmp_path, capsys):
    code = mgm_main(
        ["shard", "--set", "data.source=nyuv2-folder", "--set", f"data.path={tmp_path / 'absent'}"]
    )
    assert code == 2
    assert "data.path" in capsys.readouterr().err


def test_python_module_and_mgm_write_the_same_shards(tmp_path):
    sets = ["--set", "data.rooms.train=4", "--set", "data.rooms.val=2", "--set", "data.rooms.test=2"]
    sets += ["--set", "data.resolution=32", "--set", "shard.workers=0", "--quiet"]
    for name, command in (("a", [sys.executable, "-m", "stages.shard"]), ("b", ["mgm", "shard"])):
        if command[0] == "mgm":
            command = [str(Path(sys.executable).parent / "mgm"), "shard"]
        result = _run(
            *command,
            *sets,
            "--set",
            f"shard.out={tmp_path / name}",
            "--metrics",
            str(tmp_path / f"{name}.json"),
        )
        assert result.returncode == 0, result.stderr
    for file in sorted((tmp_path / "a").iterdir()):
        assert file.read_bytes() == (tmp_path / "b" / file.name).read_bytes(), file.name
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
