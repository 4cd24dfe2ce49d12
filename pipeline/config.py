"""Typed, validated params read from ``params.yaml`` with ``--set key=value`` overrides.

Every section is a pydantic model that forbids unknown keys, so a typo, a wrong type or an
out-of-range value fails before any work with a message naming the dotted key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ParamsError

DEFAULT_PARAMS_FILE = "params.yaml"

RESUME_FREE: dict[str, Any] = {"resume_free": True}
"""Marks a field a training run may change without restarting (where outputs go, how often it
logs, which device or how many threads it uses): :func:`training_identity` leaves it out."""


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


class ModelParams(_Section):
    """The multi-task network M (``pipeline.models.multitask``)."""

    encoder: Literal["resnet18", "halfwidth34"] = Field(
        "resnet18", description="resnet18 (torchvision) | halfwidth34 (authors': [3,4,6,3] at 48/96/192/360)"
    )
    pretrained: str | None = Field(None, description="resnet18: path of local ImageNet weights (offline)")
    tasks: list[str] = Field(["seg", "depth", "normal"], description="dense tasks, from the task registry")
    encoder_widths: list[int] = Field([48, 96, 192, 360], min_length=4, max_length=4)
    decoder_channels: list[int] = Field(
        [128, 64, 32, 32, 16], min_length=1, description="five upsampling stages (authors': 256,128,64,48,32)"
    )

    @field_validator("tasks")
    @classmethod
    def _tasks_are_registered(cls, tasks: list[str]) -> list[str]:
        from pipeline.tasks.registry import TASKS

        unknown = [name for name in tasks if name not in TASKS]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; known tasks: {', '.join(TASKS)}")
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError("give at least one task, each once")
        return tasks


class TrainMTParams(_Section):
    """The ``train_mt`` stage: single-task (``st``) and multi-task (``mt``) training on real shards."""

    variants: list[Literal["st", "mt", "mgm"]] = Field(
        ["st", "mt", "mgm"], min_length=1, json_schema_extra=RESUME_FREE
    )
    epochs: int = Field(15, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["none", "cosine", "step"] = "cosine"
    step_epochs: int = Field(10, ge=1, description="schedule=step: multiply lr by step_gamma every N epochs")
    step_gamma: float = Field(0.1, gt=0, le=1)
    loss_weights: dict[str, float] = Field({}, description="task -> weight (default 1)")
    weighting: Literal["fixed", "uncertainty"] = "fixed"
    normal_loss: Literal["l1", "cosine"] = "l1"
    workers: int = Field(
        0,
        ge=0,
        description="DataLoader worker processes (0 = in the training process)",
        json_schema_extra=RESUME_FREE,
    )
    threads: int = Field(
        0, ge=0, description="torch CPU threads (0 = torch's default)", json_schema_extra=RESUME_FREE
    )
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", json_schema_extra=RESUME_FREE)
    channels_last: bool = Field(False, json_schema_extra=RESUME_FREE)
    bf16: bool = Field(False, description="bfloat16 autocast (CPU and GPU)", json_schema_extra=RESUME_FREE)
    seed: int = Field(0, ge=0)
    out: str = Field(
        "models/mt", description="checkpoints go to <out>/<variant>[/<task>]", json_schema_extra=RESUME_FREE
    )
    plots: str = Field(
        "plots/train_mt", description="per-epoch CSV per model for dvc plots", json_schema_extra=RESUME_FREE
    )


class EvaluateParams(_Section):
    """The ``evaluate`` stage."""

    batch_size: int = Field(32, ge=1)
    grid_samples: int = Field(4, ge=1, description="fixed test samples shown in each grid")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    out: str = Field("reports", description="grids and evaluation.md")
    checkpoints: dict[str, str] = Field(
        {"mgm-joint": "models/mgm/best.pt"},
        description="more multi-task models to evaluate: name -> checkpoint (e.g. train_mgm's best.pt)",
    )


class GanParams(_Section):
    """The ``train_gan`` stage: conditional SAGAN pre-training on the real training images."""

    resolution: int | None = Field(
        None, description="output side; null = data.resolution (if set it must equal data.resolution)"
    )
    latent_dim: int = Field(128, ge=1)
    g_width: int = Field(32, ge=1, description="G channels at full resolution (x8 at 4 px)")
    d_width: int = Field(32, ge=1, description="D channels after its first block (x8 at 4 px)")
    attention_resolution: int = Field(32, ge=0, description="feature side with self-attention (0 = none)")
    g_lr: float = Field(1e-4, gt=0, description="TTUR: generator learning rate")
    d_lr: float = Field(4e-4, gt=0, description="TTUR: discriminator learning rate")
    betas: tuple[float, float] = Field((0.0, 0.999), description="Adam betas (authors' code: 0.9, 0.999)")
    d_steps: int = Field(2, ge=1, description="D updates per G update")
    instance_noise: float = Field(0.01, ge=0, description="std of Gaussian noise on every D input")
    diffaugment: list[Literal["color", "translation", "cutout"]] = Field(
        ["color", "translation", "cutout"], description="DiffAugment policy on real and fake D inputs"
    )
    ema_decay: float = Field(0.999, ge=0, lt=1, description="EMA of G (warm-up: min(decay, (1+t)/(10+t)))")
    steps: int = Field(600, ge=1, description="G updates in total", json_schema_extra=RESUME_FREE)
    batch_size: int = Field(16, ge=2)
    include_weak: bool = Field(False, description="also train on the weak split's images")
    sample_every: int = Field(
        100, ge=1, description="sample grid PNG every N steps", json_schema_extra=RESUME_FREE
    )
    fid_every: int = Field(
        50, ge=1, description="FID/KID every N steps (and at the last step)", json_schema_extra=RESUME_FREE
    )
    checkpoint_every: int = Field(
        100, ge=1, description="write last.pt every N steps", json_schema_extra=RESUME_FREE
    )
    fid_images: int = Field(
        100, ge=2, description="generated images per FID/KID evaluation", json_schema_extra=RESUME_FREE
    )
    fid_splits: list[Literal["train", "val", "test"]] = Field(
        ["val", "test"], min_length=1, json_schema_extra=RESUME_FREE
    )
    best_by: Literal["train", "val", "test"] = Field(
        "val", description="split whose FID picks best.pt", json_schema_extra=RESUME_FREE
    )
    fid_extractor: Literal["inception", "tiny"] = Field(
        "inception",
        description="inception: real FID/KID; tiny: fast test extractor (reported as fd_tiny)",
        json_schema_extra=RESUME_FREE,
    )
    grid_columns: int = Field(
        8, ge=1, description="fixed-noise samples per scene row of the grid", json_schema_extra=RESUME_FREE
    )
    workers: int = Field(0, ge=0, description="DataLoader worker processes", json_schema_extra=RESUME_FREE)
    threads: int = Field(
        0, ge=0, description="torch CPU threads (0 = torch's default)", json_schema_extra=RESUME_FREE
    )
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", json_schema_extra=RESUME_FREE)
    seed: int = Field(0, ge=0)
    resume: bool = Field(
        True, description="continue from <out>/last.pt when it exists", json_schema_extra=RESUME_FREE
    )
    out: str = Field("models/gan", description="last.pt, best.pt, samples/", json_schema_extra=RESUME_FREE)
    plots: str = Field(
        "plots/train_gan",
        description="history.csv (losses, FID, KID) for dvc plots",
        json_schema_extra=RESUME_FREE,
    )

    @model_validator(mode="after")
    def _best_by_is_tracked(self) -> GanParams:
        if self.best_by not in self.fid_splits:
            raise ValueError(f"best_by: {self.best_by!r} is not in fid_splits {self.fid_splits}")
        return self


class SynthesizeParams(_Section):
    """The ``synthesize`` stage: scene-labelled images from a generator checkpoint, as shards."""

    checkpoint: str = Field("models/gan/best.pt", description="generator checkpoint (train_gan's best.pt)")
    name: str = Field("gan", pattern=r"^[A-Za-z0-9_-]+$", description="output: <out>/<name>/")
    count: int | None = Field(None, gt=0, description="number of images; null = use count_relative")
    count_relative: float = Field(1.0, gt=0, description="images per real train image (when count is null)")
    labels: Literal["real", "balanced"] = Field("real", description="real: train scene distribution")
    scenes: list[str] | None = Field(None, description="only these scene names (null = all)")
    seed: int = Field(0, ge=0)
    batch_size: int = Field(64, ge=1)
    samples_per_shard: int = Field(256, ge=1)
    min_shards: int = Field(2, ge=1)
    fid_split: Literal["train", "val", "test", "none"] = Field(
        "test", description="real split to compare against (FID/KID overall and per scene)"
    )
    fid_extractor: Literal["inception", "tiny"] = "inception"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    out: str = Field("data/shards/synthetic", description="root folder of synthetic shard sets")
    force: bool = Field(False, description="replace a different dataset version (also --force)")


class MgmParams(_Section):
    """The ``train_mgm`` stage: the joint MGM loop (M, refinement net R, SSL head, guided G, D)."""

    gan_checkpoint: str = Field("models/gan/best.pt", description="train_gan checkpoint G and D start from")
    generator_init: Literal["ema", "raw"] = Field("ema", description="G starts from the EMA or raw weights")
    weak: Literal["synthetic", "real", "none"] = Field(
        "synthetic", description="images of steps 5-6: synthetic (G), real (the weak split), none (no G)"
    )
    joint: bool = Field(True, description="train G with M (false: the pre-trained SAGAN, frozen; no step 4)")
    refinement: bool = Field(True, description="train R, use its scene loss (false: no steps 2 and 5)")
    ssl: Literal["simclr", "recon", "none"] = Field("simclr", description="self-supervision of steps 3 and 6")
    guide: Literal["add", "concat"] = Field("add", description="G latent: z + proj(E(x)) or [z, proj(E(x))]")
    temperature: float = Field(0.5, gt=0, description="NT-Xent temperature")
    simclr_dim: int = Field(64, ge=1, description="SimCLR projection size")
    epochs: int = Field(15, ge=1, description="passes over the labelled train split")
    batch_size: int = Field(16, ge=2, description="labelled images per joint iteration")
    lr: float = Field(1e-3, gt=0, description="M (encoder, decoders), SSL head and guide projection")
    r_lr: float = Field(5e-3, gt=0, description="refinement network R")
    weight_decay: float = Field(1e-4, ge=0, description="Adam weight decay of M, head, R and projection")
    schedule: Literal["none", "cosine"] = Field("cosine", description="per-epoch lr schedule of M, head, R")
    g_lr: float | None = Field(None, gt=0, description="G learning rate (null = gan.g_lr)")
    d_lr: float | None = Field(None, gt=0, description="D learning rate (null = gan.d_lr)")
    d_steps: int = Field(1, ge=1, description="D updates per joint iteration")
    scene_weight: float = Field(1.0, ge=0, description="weight of the scene losses (steps 2 and 5)")
    ssl_weight: float = Field(1.0, ge=0, description="weight of the SSL losses (steps 3 and 6)")
    synthetic_per_labelled: float = Field(
        1.0, gt=0, description="weak images in steps 5-6 per labelled image of the batch"
    )
    refinement_width: int = Field(32, ge=1, description="R: channels of each per-task conv encoder")
    refinement_hidden: int = Field(256, ge=1, description="R: hidden units of its FC layers")
    sample_every: int = Field(
        100, ge=1, description="sample grid PNG of G every N iterations", json_schema_extra=RESUME_FREE
    )
    grid_columns: int = Field(
        8, ge=1, description="grid columns (one guide image and latent each)", json_schema_extra=RESUME_FREE
    )
    workers: int = Field(0, ge=0, description="DataLoader worker processes", json_schema_extra=RESUME_FREE)
    threads: int = Field(
        0, ge=0, description="torch CPU threads (0 = torch's default)", json_schema_extra=RESUME_FREE
    )
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", json_schema_extra=RESUME_FREE)
    seed: int = Field(0, ge=0)
    resume: bool = Field(
        True,
        description="continue from <out>/last.pt (same params, data and code)",
        json_schema_extra=RESUME_FREE,
    )
    out: str = Field(
        "models/mgm", description="last.pt, best.pt, generator.pt, samples/", json_schema_extra=RESUME_FREE
    )
    plots: str = Field(
        "plots/train_mgm",
        description="history.csv: per-epoch losses and val metrics",
        json_schema_extra=RESUME_FREE,
    )


class MixParams(_Section):
    """``train_mt`` variant ``mgm``: labelled real shards mixed with weakly labelled (scene-only) shards."""

    synthetic_ratio: float = Field(
        1.0, ge=0, allow_inf_nan=False, description="weak samples per labelled sample (0 = real only)"
    )
    weak: Literal["synthetic", "real"] = Field(
        "synthetic", description="synthetic: the set in `synthetic`; real: the weak split of shard.out"
    )
    synthetic: str = Field("data/shards/synthetic/mgm", description="folder of the synthetic shard set")
    pool_relative: float = Field(
        1.25, gt=0, description="synthesize_mgm: images x the real train images (>= the largest ratio)"
    )
    refinement: str = Field(
        "models/mgm/best.pt", description="train_mgm checkpoint whose frozen R gives the weak scene loss"
    )
    scene_weight: float = Field(1.0, ge=0, description="weight of the scene loss through R on weak samples")
    ssl: Literal["simclr", "recon", "none"] = Field("simclr", description="self-supervision on weak samples")
    ssl_weight: float = Field(1.0, ge=0, description="weight of the SSL loss on weak samples")
    ssl_dim: int = Field(64, ge=1, description="simclr: projection size of the head")
    temperature: float = Field(0.5, gt=0, description="simclr: NT-Xent temperature")


class FlowParams(_Section):
    """The Prefect flows (``mgm flow run``, ``mgm flow sweep``): retries, logs, artifacts, ratio sweeps."""

    retries: int = Field(1, ge=0, description="extra attempts of a failed DVC stage")
    retry_delay_seconds: float = Field(10.0, ge=0, description="wait before each retry")
    progress_interval_seconds: float = Field(
        10.0, ge=0, description="least seconds between two progress-bar lines of a stage in the logs"
    )
    error_lines: int = Field(30, ge=1, description="last output lines of a failed stage quoted in its error")
    grid_images: int = Field(8, ge=0, description="most images of one stage embedded in its grids artifact")
    grid_max_side: int = Field(1024, ge=32, description="embedded images are shrunk to this side in pixels")
    artifact_max_kb: int = Field(2048, ge=16, description="cap on the embedded images of one artifact")
    sweep_ratios: list[float] = Field(
        [0.0, 0.25, 0.5, 1.0, 1.25], min_length=1, description="mix.synthetic_ratio values of a sweep"
    )
    sweep_metrics: list[str] = Field(
        [], description="metrics plotted against the ratio ('file:key' or 'key'; [] = all that vary)"
    )
    sweep_out: str = Field("metrics/sweep", description="sweep.csv, sweep.md and sweep.png of the last sweep")

    @field_validator("sweep_ratios")
    @classmethod
    def _ratios_are_finite_non_negative(cls, ratios: list[float]) -> list[float]:
        for position, ratio in enumerate(ratios):
            if not 0.0 <= ratio < float("inf"):
                raise ValueError(f"ratio {ratio} at position {position}: must be finite and >= 0")
        if len(set(ratios)) != len(ratios):
            raise ValueError(f"ratios {ratios}: give each value once")
        return ratios


class Params(_Section):
    """All params of the pipeline: one section per stage plus the shared ``data`` section."""

    data: DataParams = DataParams()
    shard: ShardParams = ShardParams()
    model: ModelParams = ModelParams()
    train_mt: TrainMTParams = TrainMTParams()
    evaluate: EvaluateParams = EvaluateParams()
    gan: GanParams = GanParams()
    synthesize: SynthesizeParams = SynthesizeParams()
    mgm: MgmParams = MgmParams()
    mix: MixParams = MixParams()
    flow: FlowParams = FlowParams()

    @model_validator(mode="after")
    def _loss_weights_name_model_tasks(self) -> Params:
        unknown = sorted(set(self.train_mt.loss_weights) - set(self.model.tasks))
        if unknown:
            raise ValueError(f"train_mt.loss_weights: task(s) {unknown} are not in model.tasks")
        return self

    @model_validator(mode="after")
    def _gan_resolution_follows_data(self) -> Params:
        if self.gan.resolution is not None and self.gan.resolution != self.data.resolution:
            raise ValueError(
                f"gan.resolution: {self.gan.resolution} differs from data.resolution {self.data.resolution} "
                "(the GAN trains on the real shards; leave gan.resolution null to follow data.resolution)"
            )
        return self


def load_params(path: str | Path | None = DEFAULT_PARAMS_FILE, overrides: Iterable[str] = ()) -> Params:
    """Read ``path`` (``None`` = defaults only), apply ``key=value`` overrides and validate."""
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        raw = read_params_file(path)
    for override in overrides:
        apply_override(raw, override)
    return validate_params(raw, where=where)


def read_params_file(path: str | Path) -> dict[str, Any]:
    """A params YAML file as a plain nested dict (unvalidated); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from err
    if loaded is not None and not isinstance(loaded, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections")
    return loaded or {}


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


def training_identity(section: BaseModel) -> dict[str, Any]:
    """The values of ``section`` that decide a training trajectory: every field but those marked
    :data:`RESUME_FREE` (nested sections recursively). A checkpoint resumes only under equal values."""
    dumped = section.model_dump(mode="json")
    values: dict[str, Any] = {}
    for name, info in type(section).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("resume_free"):
            continue
        value = getattr(section, name)
        values[name] = training_identity(value) if isinstance(value, BaseModel) else dumped[name]
    return values


def params_to_dict(params: Params) -> dict[str, Any]:
    """Plain nested dict of ``params`` (JSON/YAML serialisable)."""
    return params.model_dump(mode="json")
