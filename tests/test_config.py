"""Params: typed, validated, overridable; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import apply_override, load_params, validate_params
from pipeline.errors import ParamsError

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_repo_params_file_is_valid_and_matches_defaults():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.data.source == "rooms"
    assert params.data.resolution == 64
    assert params.shard.out == "data/shards/real"
    assert params == load_params(None)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.label_fraction=0", "data.label_fraction"),
        ("data.label_fraction=1.5", "data.label_fraction"),
        ("data.resolution=16", "data.resolution"),
        ("data.resolution=abc", "data.resolution"),
        ("data.source=imagenet", "data.source"),
        ("data.labelfraction=0.5", "data.labelfraction"),
        ("shard.min_shards=0", "shard.min_shards"),
        ("bogus.key=1", "bogus"),
        ("data.split.val_fraction=0.95", "data.split"),
    ],
)
def test_bad_values_name_the_key(override, named):
    with pytest.raises(ParamsError) as info:
        load_params(None, [override])
    assert named in str(info.value)


def test_unknown_key_is_called_unknown():
    with pytest.raises(ParamsError, match=r"data\.rooms\.trian: unknown key"):
        load_params(None, ["data.rooms.trian=5"])


def test_overrides_are_typed_by_yaml():
    params = load_params(
        None, ["data.label_fraction=0.25", "data.rooms.train=7", "data.taskonomy.scenes_csv=x.csv"]
    )
    assert params.data.label_fraction == 0.25
    assert params.data.rooms.train == 7
    assert params.data.taskonomy.scenes_csv == "x.csv"


def test_rooms_source_rejects_40_classes():
    with pytest.raises(ParamsError, match="num_classes"):
        validate_params({"data": {"num_classes": 40}})


def test_malformed_override_and_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="key=value"):
        apply_override({}, "data.label_fraction")
    with pytest.raises(ParamsError, match="is not a section"):
        apply_override({"data": 3}, "data.seed=1")
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed")
    with pytest.raises(ParamsError, match=r"broken\.yaml"):
        load_params(broken)


def test_a_section_level_error_names_the_key_without_echoing_the_section(tmp_path):
    with pytest.raises(ParamsError) as info:
        load_params(REPO_ROOT / "params.yaml", ["data.num_classes=40"])
    message = str(info.value)
    assert "data: num_classes: the rooms source has the 13 NYUv2 classes only" in message
    assert "Value error" not in message and "label_fraction" not in message  # not the whole data dict


def test_a_resolution_the_gan_cannot_use_is_refused_at_shard_time_not_later():
    with pytest.raises(ParamsError, match=r"data\.resolution: Input should be 32, 64 or 128 \(got 48\)"):
        load_params(None, ["data.resolution=48"])
