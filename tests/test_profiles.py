"""Params profiles: `mgm profile NAME` writes a profile's keys into params.yaml and nothing else;
`mgm profile default` gives back the defaults byte for byte; bad profiles fail naming file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.config import load_params
from pipeline.errors import ParamsError
from pipeline.profiles import available_profiles, read_profile
from stages.cli import main as mgm

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path):
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(REPO_ROOT / "profiles", tmp_path / "profiles")
    return tmp_path


def test_every_shipped_profile_is_valid():
    assert {"quickstart", "paper-gpu"} <= set(available_profiles(REPO_ROOT))
    for name in available_profiles(REPO_ROOT):
        assert read_profile(REPO_ROOT, name)  # known keys, valid values on top of the defaults


def test_apply_then_default_round_trips_params_yaml(project, capsys):
    original = (project / "params.yaml").read_text()
    assert mgm(["profile", "quickstart", "--root", str(project)]) == 0
    applied = (project / "params.yaml").read_text()
    params = load_params(project / "params.yaml")
    assert params.data.resolution == 32 and params.gan.steps == 300 and params.data.rooms.train == 192
    assert params.gan.g_width == load_params(None).gan.g_width  # keys the profile leaves alone stay
    assert "# square side in pixels" in applied  # comments kept
    assert applied.count("\n") == original.count("\n")
    assert "data.resolution" in capsys.readouterr().out
    assert mgm(["profile", "default", "--root", str(project)]) == 0
    assert (project / "params.yaml").read_text() == original


def test_a_dry_run_writes_nothing(project, capsys):
    original = (project / "params.yaml").read_bytes()
    assert mgm(["profile", "paper-gpu", "--dry-run", "--root", str(project)]) == 0
    assert (project / "params.yaml").read_bytes() == original
    assert "would change" in capsys.readouterr().out


def test_listing_names_each_profile_with_its_description(project, capsys):
    assert mgm(["profile", "--root", str(project)]) == 0
    out = capsys.readouterr().out
    assert "quickstart" in out and "toy size" in out and "default" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gan:\n  stepz: 3\n", r"broken\.yaml: gan\.stepz: unknown key"),
        ("gan: 3\n", r"broken\.yaml: gan: is a section"),
        ("gan:\n  steps: -1\n", r"broken\.yaml: invalid params:\n  gan\.steps"),
    ],
)
def test_a_bad_profile_is_refused_naming_file_and_key(project, capsys, text, message):
    (project / "profiles" / "broken.yaml").write_text(text)
    with pytest.raises(ParamsError, match=message):
        read_profile(project, "broken")
    original = (project / "params.yaml").read_bytes()
    assert mgm(["profile", "broken", "--root", str(project)]) == 2
    assert "broken.yaml" in capsys.readouterr().err
    assert (project / "params.yaml").read_bytes() == original


def test_an_unknown_profile_lists_the_known_ones(project, capsys):
    assert mgm(["profile", "nope", "--root", str(project)]) == 2
    assert "profiles: default, paper-gpu, quickstart" in capsys.readouterr().err


def test_mapping_valued_params_stay_one_value(project):
    (project / "profiles" / "weights.yaml").write_text(yaml.safe_dump({"loss": {"weights": {"seg": 2.0}}}))
    assert read_profile(project, "weights")["loss.weights"] == {"seg": 2.0}


def test_profiles_replace_each_other_instead_of_stacking(project):
    assert mgm(["profile", "paper-gpu", "--root", str(project)]) == 0
    assert load_params(project / "params.yaml").runtime.device == "cuda"
    assert mgm(["profile", "quickstart", "--root", str(project)]) == 0
    params, defaults = load_params(project / "params.yaml"), load_params(None)
    assert params.runtime.device == defaults.runtime.device  # paper-gpu's key back at its default
    assert params.gan.g_width == defaults.gan.g_width and params.model.encoder == defaults.model.encoder
    assert params.data.resolution == 32


def test_a_profile_invalid_with_the_users_other_values_writes_nothing(project, capsys):
    text = (project / "params.yaml").read_text().replace("  tasks: [seg, depth, normal]", "  tasks: [seg]")
    (project / "params.yaml").write_text(text)
    (project / "profiles" / "weights.yaml").write_text("loss:\n  weights: {depth: 2.0}\n")
    before = (project / "params.yaml").read_bytes()
    assert mgm(["profile", "weights", "--root", str(project)]) == 2
    assert "loss.weights" in capsys.readouterr().err
    assert (project / "params.yaml").read_bytes() == before


def test_the_paper_profile_trains_at_toy_size_on_cpu(tmp_path):
    """Every key of the GPU profile but its sizes and device, one unit of each training stage on CPU:
    its networks, schedules and GAN settings fit together before a GPU ever runs them."""
    from pipeline.train.gan.loop import train_gan
    from pipeline.train.mgm import train_mgm
    from pipeline.train.multitask import train_mt
    from tests._tiny import as_overrides, tiny_project

    def is_size(key: str) -> bool:  # data, device, batches, lengths and evaluation counts stay toy-sized
        section, name = key.split(".", 1)
        return section in {"data", "shard", "runtime", "synthesize"} or name in {
            "batch_size", "epochs", "steps", "eval_images", "standing_batches"
        } or name.endswith("_every")  # fmt: skip

    lengths = {"train_mt.epochs": 1, "gan.steps": 1, "mgm.epochs": 1}
    profile = {key: value for key, value in read_profile(REPO_ROOT, "paper-gpu").items() if not is_size(key)}
    assert {"model.encoder", "model.decoder_channels", "gan.g_width", "gan.d_steps", "mgm.gan_rounds",
            "mgm.refinement_arch"} <= set(profile)  # fmt: skip
    project = tiny_project(tmp_path, train=16, label_fraction=0.75, per_shard=4)
    overrides = [*as_overrides({**profile, **lengths}), "train_mt.variants=[mt]"]
    params = project.params(*overrides)
    assert params.model.decoder_channels == [256, 128, 64, 48, 32] and params.gan.g_width == 64
    assert (params.mgm.refinement_arch, params.mgm.refinement_width, params.mgm.gan_rounds) == (
        "resnet",
        48,
        2,
    )
    assert train_mt(params, "mt", progress=False)["mt"]["epochs_done"] == 1
    assert train_gan(params, progress=False)["steps"] == 1
    assert train_mgm(project.params(*overrides, "mgm.weak=real"), progress=False)["epochs_done"] == 1
