"""Typed, validated params read from ``params.yaml`` with ``--set key=value`` overrides.

Every section is a pydantic model that forbids unknown keys, so a typo, a wrong type or an
out-of-range value fails before any work with a message naming the dotted key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ParamsError

DEFAULT_PARAMS_FILE = "params.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RoomsParams(_Section):
    """Sizes of the embedded procedural ``rooms`` dataset (it is generated, so any size works)."""

    train: int = Field(600, ge=1, description="training images (split into train/weak by label_fraction)")
    val: int = Field(100, ge=1, description="validation images")
    test: int = Field(100, ge=1, description="test images")


class SplitParams(_Section):
    """How importers split a dataset that has no fixed split of its own."""

    scheme: Literal["random", "official"] = Field(
        "random",
        description="random: seeded split by fractions; official: NYUv2 795/654 (val carved from train)",
    )
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> SplitParams:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must be below 1")
        return self


class TaskonomyParams(_Section):
    """Tiny-Taskonomy specifics."""

    scenes_csv: str | None = Field(None, description="csv with columns image,scene (the user's scene labels)")


class DataParams(_Section):
    """Which dataset to shard and how."""

    source: Literal["rooms", "nyuv2-mat", "nyuv2-folder", "taskonomy"] = "rooms"
    path: str = Field("data/sources", description="importers: the .mat file or the dataset folder")
    resolution: int = Field(64, ge=32, le=256, description="square side in pixels")
    num_classes: Literal[13, 40] = Field(13, description="NYUv2 class set (rooms has 13 only)")
    label_fraction: float = Field(
        1.0, gt=0.0, le=1.0, description="fraction of train images with pixel labels"
    )
    seed: int = Field(0, ge=0)
    rooms: RoomsParams = RoomsParams()
    split: SplitParams = SplitParams()
    taskonomy: TaskonomyParams = TaskonomyParams()

    @model_validator(mode="after")
    def _rooms_have_13_classes(self) -> DataParams:
        if self.source == "rooms" and self.num_classes != 13:
            raise ValueError("num_classes: the rooms source has the 13 NYUv2 classes only")
        return self


class ShardParams(_Section):
    """The ``shard`` stage."""

    out: str = Field("data/shards/real", description="output folder of the real shard set")
    samples_per_shard: int = Field(256, ge=1)
    min_shards: int = Field(2, ge=1, description="at least this many shards per split (>= loader workers)")
    workers: int = Field(2, ge=0, description="processes that load/render samples (0 = in-process)")


class Params(_Section):
    """All params of the pipeline: one section per stage plus the shared ``data`` section."""

    data: DataParams = DataParams()
    shard: ShardParams = ShardParams()


def load_params(path: str | Path | None = DEFAULT_PARAMS_FILE, overrides: Iterable[str] = ()) -> Params:
    """Read ``path`` (``None`` = defaults only), apply ``key=value`` overrides and validate."""
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise ParamsError(f"params file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ParamsError(f"{path}: not valid YAML: {err}") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ParamsError(f"{path}: top level must be a mapping of sections")
        raw = loaded or {}
    for override in overrides:
        apply_override(raw, override)
    return validate_params(raw, where=where)


def validate_params(raw: Mapping[str, Any], where: str = "params") -> Params:
    """Validate a nested mapping into :class:`Params`, naming every offending key."""
    try:
        return Params.model_validate(dict(raw))
    except ValidationError as err:
        problems = []
        for error in err.errors():
            key = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif "input" in error and error["type"] != "missing":
                message += f" (got {error['input']!r})"
            problems.append(f"{key}: {message}")
        raise ParamsError(f"{where}: invalid params:\n  " + "\n  ".join(problems)) from None


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParamsError(f"--set {override!r}: expected key=value, e.g. data.label_fraction=0.5")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ParamsError(f"--set {key}: value {text!r} is not valid YAML: {err}") from err
    node = raw
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ParamsError(f"--set {key}: {'.'.join(parts[: depth + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def params_to_dict(params: Params) -> dict[str, Any]:
    """Plain nested dict of ``params`` (JSON/YAML serialisable)."""
    return params.model_dump(mode="json")
