"""Conditional SAGAN pre-training: hinge loss, TTUR, D steps per G step, instance noise,
DiffAugment, an EMA of G, checkpoints with exact resume, sample grids and FID/KID tracking.

Outputs under ``gan.out`` (default ``models/gan``): ``last.pt`` (every ``checkpoint_every`` steps
and at the end), ``best.pt`` (the state with the lowest FID on ``gan.best_by``), and
``samples/step-NNNNNN.png`` (one row per scene type, fixed noise, drawn by the EMA generator).
``gan.plots``/``history.csv`` holds one row per evaluation (losses, FID and KID per split).
"""

from __future__ import annotations

import hashlib
import io
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn
from torch.utils.data import ChainDataset, DataLoader
from tqdm import tqdm

from pipeline.atomic import write_bytes_atomic
from pipeline.config import GanParams, Params
from pipeline.data.reader import ShardDataset, collate, read_summary
from pipeline.errors import ParamsError
from pipeline.metrics.fid import (
    Extractor,
    compare_features,
    image_features,
    make_extractor,
    read_shard_images,
)
from pipeline.models.sagan import Discriminator, Generator, SaganConfig, build_sagan
from pipeline.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pipeline.train.diffaugment import diff_augment
from pipeline.train.history import write_history_csv
from pipeline.train.runtime import seed_everything, start_runtime
from pipeline.viz import save_image

CHECKPOINT_KIND = "mgm-sagan"
RESUME_MUTABLE = frozenset(
    {"steps", "sample_every", "fid_every", "checkpoint_every", "device", "threads", "workers", "resume"}
    | {"out", "plots", "grid_columns", "fid_images", "fid_splits", "best_by", "fid_extractor"}
)
"""``gan`` params that may change between a run and its resumption (they do not alter training)."""


# ----------------------------------------------------------------------------- losses and EMA


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``."""
    return torch.relu(1.0 - real_logits).mean() + torch.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """``-mean(D(fake))``."""
    return -fake_logits.mean()


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up: ``min(decay, (1 + step) / (10 + step))``, so early weights fade fast."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; buffers (BN stats, SN vectors) copied."""
    for ema_param, param in zip(ema.parameters(), model.parameters()):
        ema_param.lerp_(param, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


# ----------------------------------------------------------------------------- configuration


def sagan_config(params: Params, num_classes: int) -> SaganConfig:
    """The architecture the params describe (resolution follows ``data.resolution``)."""
    gan = params.gan
    try:
        return SaganConfig(
            resolution=gan.resolution or params.data.resolution,
            num_classes=num_classes,
            latent_dim=gan.latent_dim,
            g_width=gan.g_width,
            d_width=gan.d_width,
            attention_resolution=gan.attention_resolution,
        )
    except ValueError as err:
        raise ParamsError(f"gan / data.resolution: {err}") from None


def training_config(gan: GanParams) -> dict[str, Any]:
    """The ``gan`` params that fix the training trajectory (compared when resuming)."""
    values = gan.model_dump(mode="json")
    return {key: value for key, value in sorted(values.items()) if key not in RESUME_MUTABLE}


def config_differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """``key: stored vs wanted`` for every key whose value differs."""
    keys = sorted(set(stored) | set(wanted))
    return [
        f"{key}: checkpoint {stored.get(key)!r} vs params {wanted.get(key)!r}"
        for key in keys
        if stored.get(key) != wanted.get(key)
    ]


def load_generator(
    path: str | Path, expected: SaganConfig | None = None, device: str | torch.device = "cpu"
) -> tuple[Generator, dict[str, Any]]:
    """The EMA generator of a ``train_gan`` checkpoint, in eval mode, and the checkpoint dict.

    With ``expected``, a checkpoint trained for another architecture (resolution, widths, latent
    size, attention, number of scene classes) is a :class:`CheckpointError` naming each difference.
    """
    state = load_checkpoint(path, map_location="cpu")
    if state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"checkpoint {path} is not a train_gan checkpoint (kind {state.get('kind')!r})")
    stored = state["config"]["sagan"]
    if expected is not None:
        problems = config_differences(stored, expected.as_dict())
        if problems:
            raise CheckpointError(
                f"checkpoint {path} does not match the params ({'; '.join(problems)}): "
                "set gan.* / data.resolution to the checkpoint's values or pick another checkpoint"
            )
    generator = Generator(SaganConfig(**stored))
    load_state_strict(generator, state["generator_ema"], f"checkpoint {path} (generator_ema)")
    return generator.to(device).eval(), state


# ----------------------------------------------------------------------------- data


def real_label_counts(real_folder: str | Path, include_weak: bool = False) -> np.ndarray:
    """Images per scene class in the real training split(s), from the shard set's summary."""
    summary = read_summary(real_folder)
    names = summary["scene_names"]
    counts = np.zeros(len(names), dtype=np.int64)
    for split in ("train", "weak") if include_weak else ("train",):
        for name, count in summary["splits"].get(split, {}).get("scenes", {}).items():
            counts[names.index(name)] += count
    return counts


def allocate_labels(weights: Sequence[float], total: int, seed: int) -> np.ndarray:
    """``total`` labels in proportion to ``weights`` (largest remainder), in a seeded random order."""
    weights = np.asarray(weights, dtype=np.float64)
    if total <= 0:
        raise ValueError(f"count must be positive, got {total}")
    if weights.sum() <= 0:
        raise ValueError("no scene class has a positive weight")
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    labels = np.repeat(np.arange(len(weights)), counts)
    return np.random.default_rng([seed, 0x1ABE1]).permutation(labels)


class RealBatches:
    """Endless (images in [-1, 1], scene labels) batches over epochs; can skip to a saved position."""

    def __init__(self, folder: str | Path, splits: Sequence[str], batch_size: int, seed: int, workers: int):
        self.datasets = [
            ShardDataset(folder, split, shuffle=True, seed=seed, rgb_range="pm1") for split in splits
        ]
        self.batch_size = batch_size
        self.seed = seed
        self.workers = workers
        self.epoch = 0
        self.position = 0
        self._iterator: Iterator[dict[str, Any]] | None = None

    def seek(self, epoch: int, position: int) -> None:
        """Continue at batch ``position`` of ``epoch`` (the batches before it are read and dropped)."""
        self.epoch, self.position = epoch, 0
        self._iterator = self._epoch_iterator()
        for _ in range(position):
            self._next_in_epoch()

    def _epoch_iterator(self) -> Iterator[dict[str, Any]]:
        for dataset in self.datasets:
            dataset.set_epoch(self.epoch)
        loader = DataLoader(
            ChainDataset(self.datasets),
            batch_size=self.batch_size,
            drop_last=True,
            num_workers=self.workers,
            collate_fn=collate,
            generator=torch.Generator().manual_seed(self.seed + self.epoch),  # keeps the global RNG untouched
        )
        return iter(loader)

    def _next_in_epoch(self) -> dict[str, Any] | None:
        assert self._iterator is not None
        batch = next(self._iterator, None)
        if batch is not None:
            self.position += 1
        return batch

    def __next__(self) -> tuple[Tensor, Tensor]:
        if self._iterator is None:
            self.seek(self.epoch, self.position)
        batch = self._next_in_epoch()
        if batch is None:
            self.epoch, self.position = self.epoch + 1, 0
            self._iterator = self._epoch_iterator()
            batch = self._next_in_epoch()
            if batch is None:
                raise CheckpointError(
                    f"fewer real training images than one batch ({self.batch_size}): lower gan.batch_size"
                )
        return batch["rgb"], batch["scene"]

    def __iter__(self) -> RealBatches:
        return self


# ----------------------------------------------------------------------------- one step


@dataclass
class GanModels:
    """G, D, the EMA of G and their optimisers."""

    generator: Generator
    discriminator: Discriminator
    generator_ema: Generator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def build_models(config: SaganConfig, gan: GanParams, device: torch.device) -> GanModels:
    """Fresh G, D and EMA copy of G on ``device``, with Adam at the TTUR learning rates."""
    generator, discriminator = build_sagan(config)
    generator, discriminator = generator.to(device), discriminator.to(device)
    generator_ema = Generator(config).to(device)
    generator_ema.load_state_dict(generator.state_dict())
    generator_ema.eval().requires_grad_(False)
    betas = (float(gan.betas[0]), float(gan.betas[1]))
    return GanModels(
        generator,
        discriminator,
        generator_ema,
        torch.optim.Adam(generator.parameters(), lr=gan.g_lr, betas=betas),
        torch.optim.Adam(discriminator.parameters(), lr=gan.d_lr, betas=betas),
    )


def discriminator_input(images: Tensor, policy: Sequence[str], noise_std: float) -> Tensor:
    """What D sees: DiffAugment, then instance noise N(0, std^2)."""
    if policy:
        images = diff_augment(images, policy)
    if noise_std > 0:
        images = images + noise_std * torch.randn_like(images)
    return images


def train_step(
    models: GanModels, batches: Iterator[tuple[Tensor, Tensor]], gan: GanParams, step: int, device
) -> dict[str, float]:
    """``gan.d_steps`` D updates (each on a fresh real batch), one G update, one EMA update."""
    generator, discriminator = models.generator, models.discriminator
    generator.train()
    discriminator.train()
    latent = generator.config.latent_dim
    stats = {"d_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
    for _ in range(gan.d_steps):
        real, labels = next(batches)
        real, labels = real.to(device), labels.to(device)
        with torch.no_grad():
            fake = generator(torch.randn(len(labels), latent, device=device), labels)
        real_logits = discriminator(discriminator_input(real, gan.diffaugment, gan.instance_noise), labels)
        fake_logits = discriminator(discriminator_input(fake, gan.diffaugment, gan.instance_noise), labels)
        loss_d = hinge_d_loss(real_logits, fake_logits)
        models.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        models.opt_d.step()
        stats["d_loss"] += loss_d.item() / gan.d_steps
        stats["d_real"] += real_logits.mean().item() / gan.d_steps
        stats["d_fake"] += fake_logits.mean().item() / gan.d_steps
    fake = generator(torch.randn(len(labels), latent, device=device), labels)
    loss_g = hinge_g_loss(
        discriminator(discriminator_input(fake, gan.diffaugment, gan.instance_noise), labels)
    )
    models.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    models.opt_g.step()
    update_ema(models.generator_ema, generator, ema_decay_at(step, gan.ema_decay))
    stats["g_loss"] = loss_g.item()
    return stats


# ----------------------------------------------------------------------------- sampling and FID


def to_uint8(images: Tensor) -> np.ndarray:
    """``B x 3 x H x W`` in [-1, 1] -> uint8 ``B x H x W x 3``."""
    scaled = ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def generate(
    generator: Generator, z: Tensor, labels: Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """uint8 images of ``generator`` (eval mode) for the given latents and labels, in batches."""
    generator.eval()
    chunks = [
        to_uint8(generator(z[i : i + batch_size].to(device), labels[i : i + batch_size].to(device)))
        for i in range(0, len(labels), batch_size)
    ]
    return np.concatenate(chunks)


def fixed_latents(count: int, latent_dim: int, seed: int) -> Tensor:
    """``count`` latents from a private generator (the global RNG is untouched)."""
    return torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))


def scene_grid(images: np.ndarray, columns: int, scene_names: Sequence[str]) -> Image.Image:
    """A grid with one labelled row per scene (``images`` row-major, ``columns`` per row)."""
    rows = len(scene_names)
    side = images.shape[1]
    cell = max(side, 64)
    label_w, gap = 96, 2
    grid = Image.new("RGB", (label_w + columns * (cell + gap), rows * (cell + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for row, name in enumerate(scene_names):
        top = row * (cell + gap)
        draw.text((4, top + cell // 2 - 6), str(name), fill=(0, 0, 0), font=font)
        for col in range(columns):
            tile = Image.fromarray(images[row * columns + col])
            if side != cell:
                tile = tile.resize((cell, cell), Image.Resampling.NEAREST)
            grid.paste(tile, (label_w + col * (cell + gap), top))
    return grid


class FidTracker:
    """FID/KID of the EMA generator's images against fixed real reference splits.

    Reference features are computed once; the generated images use fixed latents and labels
    (in the real training distribution), so successive evaluations differ only through G.
    """

    def __init__(
        self,
        real_folder: str | Path,
        splits: Sequence[str],
        extractor: Extractor,
        count: int,
        label_weights: Sequence[float],
        latent_dim: int,
        seed: int,
        scene_names: Sequence[str],
        progress: bool = False,
    ) -> None:
        self.extractor = extractor
        self.scene_names = list(scene_names)
        self.reference: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split in splits:
            images, scenes = read_shard_images(real_folder, split, limit=count)
            self.reference[split] = (
                image_features(images, extractor, progress=progress, description=f"{split} features"),
                scenes,
            )
        self.labels = torch.from_numpy(allocate_labels(label_weights, count, seed))
        self.latents = fixed_latents(count, latent_dim, seed + 1)

    def floor(self) -> dict[str, Any] | None:
        """Distance between the first two reference splits (two disjoint real samples), if two."""
        if len(self.reference) < 2:
            return None
        (name_a, (feats_a, scenes_a)), (name_b, (feats_b, scenes_b)) = list(self.reference.items())[:2]
        result = compare_features(feats_a, scenes_a, feats_b, scenes_b, self.extractor.name, [])
        result.pop("per_scene")
        return {"pair": f"{name_a}-{name_b}", **result}

    def evaluate(self, generator: Generator, batch_size: int, device: torch.device) -> dict[str, float]:
        images = generate(generator, self.latents, self.labels, batch_size, device)
        features = image_features(images, self.extractor)
        labels = self.labels.numpy()
        row: dict[str, float] = {}
        for split, (reference, scenes) in self.reference.items():
            result = compare_features(features, labels, reference, scenes, self.extractor.name, [])
            for name in self.extractor.distance_names:
                row[f"{name}_{split}"] = result[name]
        return row


# ----------------------------------------------------------------------------- the loop


@dataclass
class TrainState:
    """What besides the models a checkpoint must hold to resume exactly."""

    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def checkpoint_state(
    models: GanModels,
    state: TrainState,
    batches: RealBatches,
    config: SaganConfig,
    gan: GanParams,
    scene_names: Sequence[str],
    data_id: str,
) -> dict[str, Any]:
    """Everything needed to resume exactly, and to rebuild G for synthesis (weights-only loadable)."""
    return {
        "kind": CHECKPOINT_KIND,
        "config": {"sagan": config.as_dict(), "train": training_config(gan), "data": data_id},
        "scene_names": list(scene_names),
        "generator": models.generator.state_dict(),
        "discriminator": models.discriminator.state_dict(),
        "generator_ema": models.generator_ema.state_dict(),
        "opt_g": models.opt_g.state_dict(),
        "opt_d": models.opt_d.state_dict(),
        "step": state.step,
        "epoch": batches.epoch,
        "batch_in_epoch": batches.position,
        "history": state.history,
        "best": state.best,
        "running": state.running,
        "seconds": state.seconds,
        "rng": rng_state(),
    }


def resume_problems(saved: Mapping[str, Any], config: SaganConfig, gan: GanParams, data_id: str) -> list[str]:
    """Why ``saved`` cannot be resumed under these params and data (empty when it can)."""
    if saved.get("kind") != CHECKPOINT_KIND:
        return [f"not a train_gan checkpoint (kind {saved.get('kind')!r})"]
    stored = saved["config"]
    problems = config_differences(stored["sagan"], config.as_dict())
    problems += config_differences(stored["train"], training_config(gan))
    if stored.get("data") != data_id:
        problems.append("the real training shards changed")
    return problems


def restore(saved: Mapping[str, Any], path: Path, models: GanModels) -> TrainState:
    """Load a resumable checkpoint dict into ``models``; return the loop's state."""
    load_state_strict(models.generator, saved["generator"], f"{path} (generator)")
    load_state_strict(models.discriminator, saved["discriminator"], f"{path} (discriminator)")
    load_state_strict(models.generator_ema, saved["generator_ema"], f"{path} (generator_ema)")
    models.opt_g.load_state_dict(saved["opt_g"])
    models.opt_d.load_state_dict(saved["opt_d"])
    return TrainState(
        step=saved["step"],
        history=list(saved["history"]),
        best=dict(saved["best"]),
        running=dict(saved["running"]),
        seconds=float(saved["seconds"]),
    )


def data_fingerprint(real_folder: Path) -> str:
    """sha256 of the real shard set's summary (names, counts per split and scene, data params)."""
    return hashlib.sha256((real_folder / "summary.json").read_bytes()).hexdigest()


def train_gan(params: Params, progress: bool = True) -> dict[str, Any]:
    """Run the ``train_gan`` stage; return its final metrics (steps, time, last and best FID, floor)."""
    gan = params.gan
    real = Path(params.shard.out)
    runtime = start_runtime(gan.device, gan.threads or None)
    device = runtime.device
    summary = read_summary(real)
    scene_names = summary["scene_names"]
    config = sagan_config(params, len(scene_names))
    if summary.get("resolution") not in (None, config.resolution):
        raise CheckpointError(
            f"{real} holds {summary['resolution']} px images but the GAN is {config.resolution} px"
        )
    out, plots = Path(gan.out), Path(gan.plots)
    out.mkdir(parents=True, exist_ok=True)
    splits = (
        ["train", "weak"]
        if gan.include_weak and summary["splits"].get("weak", {}).get("samples")
        else ["train"]
    )

    seed_everything(gan.seed)
    models = build_models(config, gan, device)
    batches = RealBatches(real, splits, gan.batch_size, gan.seed, gan.workers)
    state = TrainState()
    data_id = data_fingerprint(real)
    last = out / "last.pt"
    saved: dict[str, Any] = load_checkpoint(last) if gan.resume and last.is_file() else {}
    problems = resume_problems(saved, config, gan, data_id) if saved else []
    if saved and not problems:
        state = restore(saved, last, models)
        batches.seek(saved["epoch"], saved["batch_in_epoch"])
    else:
        if problems:
            print(f"train_gan: starting afresh, not resuming {last}: {'; '.join(problems)}", file=sys.stderr)
        for stale in (last, out / "best.pt"):
            stale.unlink(missing_ok=True)

    label_weights = real_label_counts(real, gan.include_weak)
    tracker = FidTracker(
        real,
        gan.fid_splits,
        make_extractor(gan.fid_extractor, device),
        gan.fid_images,
        label_weights,
        config.latent_dim,
        gan.seed,
        scene_names,
        progress,
    )
    floor = tracker.floor()
    grid_labels = torch.arange(len(scene_names)).repeat_interleave(gan.grid_columns)
    grid_latents = fixed_latents(gan.grid_columns, config.latent_dim, gan.seed + 2).repeat(
        len(scene_names), 1
    )
    fd_name = tracker.extractor.distance_names[0]
    best_key = f"{fd_name}_{gan.best_by}"

    if state.step:
        set_rng_state(saved["rng"])  # last, so nothing set up above can shift the restored streams

    def save(path: Path) -> None:
        save_checkpoint(checkpoint_state(models, state, batches, config, gan, scene_names, data_id), path)

    bar = tqdm(
        total=gan.steps,
        initial=min(state.step, gan.steps),
        desc="train_gan",
        unit="step",
        disable=not progress,
    )
    while state.step < gan.steps:
        started = time.perf_counter()
        stats = train_step(models, batches, gan, state.step, device)
        state.step += 1
        for key, value in stats.items():
            state.running[key] = state.running.get(key, 0.0) + value
        state.running["count"] = state.running.get("count", 0.0) + 1
        state.seconds += time.perf_counter() - started
        bar.update(1)
        final = state.step == gan.steps
        if state.step % gan.sample_every == 0 or final:
            images = generate(models.generator_ema, grid_latents, grid_labels, 64, device)
            save_image(
                scene_grid(images, gan.grid_columns, scene_names),
                out / "samples" / f"step-{state.step:06d}.png",
            )
        if state.step % gan.fid_every == 0 or final:
            count = max(state.running.pop("count"), 1.0)
            row: dict[str, Any] = {"step": state.step, "epoch": batches.epoch}
            row.update({key: value / count for key, value in sorted(state.running.items())})
            state.running = {}
            row.update(tracker.evaluate(models.generator_ema, 64, device))
            row["seconds"] = round(state.seconds, 1)
            state.history.append(row)
            write_history_csv(state.history, plots / "history.csv")
            bar.set_postfix({best_key: f"{row[best_key]:.2f}"})
            if not state.best or row[best_key] < state.best[best_key]:
                state.best = dict(row)
                save(out / "best.pt")
        if state.step % gan.checkpoint_every == 0 or final:
            save(last)
    bar.close()
    if state.history:
        write_history_csv(state.history, plots / "history.csv")
        plot_fid_curve(state.history, floor, fd_name, plots / "fid.png")
    metrics = {
        "steps": state.step,
        "train_seconds": round(state.seconds, 1),
        "extractor": tracker.extractor.name,
        "last": state.history[-1] if state.history else {},
        "best": state.best,
        "floor": floor,
    }
    return metrics


def plot_fid_curve(
    rows: Sequence[Mapping[str, Any]], floor: Mapping[str, Any] | None, name: str, path: Path
) -> Path:
    """PNG of the Fréchet distance per split against the step, with the real-vs-real floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.6), dpi=100)
    steps = [row["step"] for row in rows]
    for key in [k for k in rows[0] if k.startswith(f"{name}_")]:
        axes.plot(steps, [row[key] for row in rows], marker="o", markersize=3, label=key)
    if floor and name in floor:
        axes.axhline(
            floor[name], color="grey", linestyle="--", label=f"floor ({floor['pair']}, real vs real)"
        )
    axes.set_xlabel("G step")
    axes.set_ylabel(name)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return write_bytes_atomic(path, buffer.getvalue())
