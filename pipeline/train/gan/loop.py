"""Conditional SAGAN pre-training: hinge loss, D steps per G step, instance noise, DiffAugment,
an EMA of G with standing batch-norm statistics, checkpoints with exact resume, sample grids, and
KID/FID/scene-probe tracking against a held-out real reference.

It runs on the training engine (:mod:`pipeline.train.engine`), one unit per G step: resume only
under the same params, data and code, so an edit of this loop's code retrains the GAN.

Outputs under ``gan.out`` (default ``models/gan``): ``last.pt`` (every ``checkpoint_every`` steps
and at the end), ``best.pt`` (the state with the lowest ``gan.best_by`` metric), and
``samples/step-NNNNNN.png`` (one row per scene type, fixed noise, drawn by the EMA generator).
``gan.plots``/``history.csv`` holds one row per evaluation (losses, KID, FID, scene accuracy),
``metrics.png`` their curves against kimg with the real-image floor and blur rung.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pipeline.checkpoint import load_state_strict
from pipeline.config import GanParams, Params, training_identity
from pipeline.data.reader import list_shards, read_summary, shard_resolution
from pipeline.generators import (
    CHECKPOINT_KIND,
    allocate_labels,
    fixed_latents,
    generate,
    real_label_counts,
    sagan_config,
    set_standing_statistics,
)
from pipeline.hashing import shard_set_fingerprint
from pipeline.metrics.fid import make_extractor
from pipeline.metrics.reference import load_real_reference
from pipeline.models.sagan import Discriminator, Generator, SaganConfig, build_sagan
from pipeline.runtime import loader_workers, runtime_session, seed_everything
from pipeline.train.engine import (
    Engine,
    EngineState,
    Fingerprint,
    RunSpec,
    UnitResult,
    public_history,
    require_batches,
)
from pipeline.train.gan.adversarial import discriminator_loss, ema_decay_at, generator_loss, update_ema
from pipeline.train.gan.batches import RealBatches
from pipeline.train.gan.evaluation import GanEvaluator, plot_metrics
from pipeline.viz import save_image, scene_grid


@dataclass
class GanModels:
    """G, D, the EMA of G and their optimisers."""

    generator: Generator
    discriminator: Discriminator
    generator_ema: Generator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def build_models(config: SaganConfig, gan: GanParams, device: torch.device) -> GanModels:
    """Fresh G, D and EMA copy of G on ``device``, with Adam; G's class parameters (embedding and
    BN maps) at ``class_lr_scale`` times G's rate."""
    generator, discriminator = build_sagan(config)
    generator, discriminator = generator.to(device), discriminator.to(device)
    generator_ema = Generator(config).to(device)
    generator_ema.load_state_dict(generator.state_dict())
    generator_ema.eval().requires_grad_(False)
    betas = (float(gan.betas[0]), float(gan.betas[1]))
    class_ids = {id(param) for param in generator.class_parameters()}
    groups = [
        {"params": [p for p in generator.parameters() if id(p) not in class_ids], "lr": gan.g_lr},
        {
            "params": [p for p in generator.parameters() if id(p) in class_ids],
            "lr": gan.g_lr * gan.class_lr_scale,
        },
    ]
    return GanModels(
        generator,
        discriminator,
        generator_ema,
        torch.optim.Adam(groups, lr=gan.g_lr, betas=betas),
        torch.optim.Adam(discriminator.parameters(), lr=gan.d_lr, betas=betas),
    )


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
        loss_d, logits = discriminator_loss(
            discriminator, real, fake, labels, gan.diffaugment, gan.instance_noise
        )
        models.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        models.opt_d.step()
        stats["d_loss"] += loss_d.item() / gan.d_steps
        stats["d_real"] += logits["d_real"] / gan.d_steps
        stats["d_fake"] += logits["d_fake"] / gan.d_steps
    fake = generator(torch.randn(len(labels), latent, device=device), labels)
    loss_g = generator_loss(discriminator, fake, labels, gan.diffaugment, gan.instance_noise)
    models.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    models.opt_g.step()
    update_ema(models.generator_ema, generator, ema_decay_at(step, gan.ema_decay))
    stats["g_loss"] = loss_g.item()
    return stats


def generator_checkpoint(
    models: GanModels,
    config: SaganConfig,
    gan: GanParams,
    scene_names: Sequence[str],
    step: int,
    evaluation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``train_gan`` checkpoint entries that ``synthesize`` and ``train_mgm`` read (weights-only):
    kind, architecture and training params, scene names, G, D, G's EMA, the step and, when the EMA
    G was evaluated at this step, its KID/FID/scene accuracy with the real references. No optimiser
    state: ``best.pt`` is for using the GAN; ``last.pt`` adds what resuming needs."""
    state = {
        "kind": CHECKPOINT_KIND,
        "config": {"sagan": config.as_dict(), "train": training_identity(gan)},
        "scene_names": list(scene_names),
        "generator": models.generator.state_dict(),
        "discriminator": models.discriminator.state_dict(),
        "generator_ema": models.generator_ema.state_dict(),
        "step": step,
    }
    if evaluation is not None:
        state["evaluation"] = dict(evaluation)
    return state


def train_gan(params: Params, progress: bool = True, max_steps: int | None = None) -> dict[str, Any]:
    """Run the ``train_gan`` stage on the training engine; return its final metrics (steps, time,
    final KID/FID/scene accuracy, real references, best step). ``max_steps`` stops early, as a
    kill at that step would."""
    gan = params.gan
    real = Path(params.shard.out)
    with runtime_session(params.runtime.device, params.runtime.threads) as runtime:
        loop = GanLoop(params, runtime.device, progress)  # first: bad input fails before any file changes
        spec = RunSpec(
            name="train_gan",
            folder=Path(gan.out),
            units=gan.steps,
            unit="step",
            fingerprint=Fingerprint(
                {"gan": training_identity(gan)},  # the resolution is the shards' (in their hash)
                {"shards": shard_set_fingerprint(real)},
                (__name__,),
            ),
            history_csv=Path(gan.plots) / "history.csv",
            checkpoint_every=gan.checkpoint_every,
            resume=gan.resume,
            outputs=("samples/step-*.png",),
            keep_resume_state=True,  # gan.steps may grow: a finished run continues from its last.pt
        )
        return Engine(spec, runtime, progress=progress).train(loop, max_units=max_steps)


class GanLoop:
    """``train_gan`` as an engine loop: a unit is one G step (with its D steps); grids every
    ``sample_every`` steps, KID/FID/scene-probe rows every ``eval_every`` steps and at the last."""

    def __init__(self, params: Params, device: torch.device, progress: bool) -> None:
        gan = self.gan = params.gan
        self.device = device
        real = Path(params.shard.out)
        summary = read_summary(real)
        self.scene_names = summary["scene_names"]
        self.config = sagan_config(params, len(self.scene_names), shard_resolution(summary, real))
        self.out = Path(gan.out)
        splits = (
            ["train", "weak"]
            if gan.include_weak and summary["splits"].get("weak", {}).get("samples")
            else ["train"]
        )
        images = sum(int(summary["splits"].get(split, {}).get("samples", 0)) for split in splits)
        require_batches(images, gan.batch_size, f"the {' + '.join(splits)} split of {real}", "gan.batch_size")
        extractor = make_extractor(gan.fid_extractor, device)
        seed_everything(gan.seed)
        self.models = build_models(self.config, gan, device)
        shards = min(len(list_shards(real, split)) for split in splits)
        workers = loader_workers(params.runtime.workers, device, shards)
        self.batches = RealBatches(real, splits, gan.batch_size, gan.seed, workers)
        self.step = 0
        self.running: dict[str, float] = {}
        self.seconds = 0.0
        label_weights = real_label_counts(real, gan.include_weak)
        reference = load_real_reference(  # checks the split sizes first: still before any file changes
            real,
            gan.reference_split,
            gan.floor_split,
            gan.eval_images,
            extractor,
            params.runtime.cache,
            progress,
        )
        self.evaluator = GanEvaluator(reference, extractor, label_weights, self.config.latent_dim, gan.seed)
        names = self.scene_names
        self.grid_labels = torch.arange(len(names)).repeat_interleave(gan.grid_columns)
        self.grid_latents = fixed_latents(gan.grid_columns, self.config.latent_dim, gan.seed + 2).repeat(
            len(names), 1
        )
        standing = gan.standing_batches * gan.batch_size
        self.standing_labels = torch.from_numpy(
            allocate_labels(label_weights, max(standing, 1), gan.seed + 3)
        )
        self.standing_latents = fixed_latents(max(standing, 1), self.config.latent_dim, gan.seed + 4)
        self.standing_step = -1
        self.evaluated: dict[str, Any] | None = None  # the last evaluation row
        self.best_key = self.evaluator.fd_name if gan.best_by == "fid" else self.evaluator.kd_name

    def _ready_to_sample(self) -> Generator:
        """The EMA G with standing statistics for its current weights (recomputed once per step)."""
        ema = self.models.generator_ema
        if self.gan.standing_batches and self.standing_step != self.step:
            set_standing_statistics(
                ema, self.standing_latents, self.standing_labels, self.gan.batch_size, self.device
            )
            self.standing_step = self.step
        return ema

    @property
    def kimg(self) -> float:
        """Thousands of real images D has seen (each G step: ``d_steps`` batches)."""
        return self.step * self.gan.batch_size * self.gan.d_steps / 1000.0

    def state_dict(self) -> dict[str, Any]:
        self._ready_to_sample()
        return {
            **generator_checkpoint(self.models, self.config, self.gan, self.scene_names, self.step),
            "opt_g": self.models.opt_g.state_dict(),
            "opt_d": self.models.opt_d.state_dict(),
            "epoch": self.batches.epoch,
            "batch_in_epoch": self.batches.position,
            "running": dict(self.running),
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        models = self.models
        load_state_strict(models.generator, state["generator"], f"{where} (generator)")
        load_state_strict(models.discriminator, state["discriminator"], f"{where} (discriminator)")
        load_state_strict(models.generator_ema, state["generator_ema"], f"{where} (generator_ema)")
        models.opt_g.load_state_dict(state["opt_g"])
        models.opt_d.load_state_dict(state["opt_d"])
        self.step = int(state["step"])
        self.running = dict(state["running"])
        self.seconds = float(state["seconds"])
        self.batches.seek(state["epoch"], state["batch_in_epoch"])

    def best_state(self) -> dict[str, Any]:
        """G, D, EMA, step and the evaluation that made it best: no wall-clock time, so equal
        training gives an equal file."""
        self._ready_to_sample()
        evaluation = None
        if self.evaluated is not None and self.evaluated["step"] == self.step:
            metrics = (self.evaluator.fd_name, self.evaluator.kd_name, "scene_acc")
            evaluation = {
                "step": self.step,
                "kimg": round(self.kimg, 3),
                **{name: self.evaluated[name] for name in metrics},
                **self.evaluator.rungs,
            }
        return generator_checkpoint(
            self.models, self.config, self.gan, self.scene_names, self.step, evaluation
        )

    def pause_note(self, unit: int) -> str | None:
        """Shown on the bar before a step that ends with an evaluation (~50 s on 2 cores at n=500)."""
        step = unit + 1
        if step % self.gan.eval_every == 0 or step == self.gan.steps:
            return f"then evaluating {self.gan.eval_images} images"
        return None

    def train_unit(self, unit: int) -> UnitResult:
        gan, device = self.gan, self.device
        started = time.perf_counter()
        stats = train_step(self.models, self.batches, gan, self.step, device)
        self.step += 1
        for key, value in stats.items():
            self.running[key] = self.running.get(key, 0.0) + value
        self.running["count"] = self.running.get("count", 0.0) + 1
        self.seconds += time.perf_counter() - started
        final = self.step == gan.steps
        if self.step % gan.sample_every == 0 or final:
            images = generate(self._ready_to_sample(), self.grid_latents, self.grid_labels, 64, device)
            save_image(
                scene_grid(images, gan.grid_columns, self.scene_names),
                self.out / "samples" / f"step-{self.step:06d}.png",
            )
        if not (self.step % gan.eval_every == 0 or final):
            return UnitResult()
        count = max(self.running.pop("count"), 1.0)
        row: dict[str, Any] = {"step": self.step, "kimg": round(self.kimg, 3), "epoch": self.batches.epoch}
        row.update({key: value / count for key, value in sorted(self.running.items())})
        self.running = {}
        row.update(self.evaluator.evaluate(self._ready_to_sample(), 64, device))
        # the real rungs on every row, so that one plot of history.csv draws a metric beside its floor
        row.update({key: value for key, value in self.evaluator.rungs.items() if key != "n_images"})
        row["seconds"] = round(self.seconds, 1)
        self.evaluated = row
        return UnitResult(row=row, score=row[self.best_key])

    def finish(self, state: EngineState) -> None:
        history = public_history(state)
        if history:
            plot_metrics({"EMA G": history}, self.evaluator.rungs, Path(self.gan.plots) / "metrics.png")

    def summary(self, state: EngineState) -> dict[str, Any]:
        """The stage's metrics, flat: the final EMA G's KID, FID and scene accuracy, the real
        references at the same n (floor, blur rung, probe on real images), and the best row's step."""
        history = public_history(state)
        last = history[-1] if history else {}
        best = state.best_row() or {}
        fd_name, kd_name = self.evaluator.fd_name, self.evaluator.kd_name
        return {
            "steps": self.step,
            "kimg": round(self.kimg, 3),
            "train_seconds": round(self.seconds, 1),
            "extractor": self.evaluator.extractor.name,
            fd_name: last.get(fd_name),
            kd_name: last.get(kd_name),
            "scene_acc": last.get("scene_acc"),
            **self.evaluator.rungs,
            "best_step": best.get("step"),
            f"best_{self.best_key}": best.get(self.best_key),
        }
