"""The ``train_mgm`` stage: joint training of M, R, the SSL head and the guided G/D (MGM).

Each labelled batch of the real ``train`` split runs the steps of
:mod:`pipeline.train.mgm_steps` that the variant switches on (``mgm.weak``, ``mgm.joint``,
``mgm.refinement``, ``mgm.ssl``). Outputs under ``mgm.out`` (default ``models/mgm``):

* ``last.pt``: everything needed to resume (all parts, optimizers, schedulers, RNG states, epoch,
  step, history, best score), written atomically after every epoch;
* ``best.pt``: the snapshot (:func:`~pipeline.train.mgm_snapshot.snapshot`) of the epoch with the
  lowest validation score (``train_mt``'s :func:`~pipeline.train.builders.selection_score`); its
  ``model`` loads like a ``train_mt`` best.pt, its ``refinement`` is the R that ``mix.refinement``
  names;
* ``generator.pt`` (with a generator): ``best.pt`` as a ``train_gan`` checkpoint for ``synthesize``;
* ``samples/step-NNNNNN.png``: G's EMA, one row per scene, one column per fixed latent and guide
  image, every ``mgm.sample_every`` iterations and at the end;
* ``training.json``: the summary, written last (a run without it has not finished).

``mgm.plots``/``history.csv`` has one row per epoch (mean step losses, validation metrics, score).

It runs on the training engine (:mod:`pipeline.train.engine`), one unit per epoch, as ``train_mt``
does. The data order is a function of ``(seed, epoch)`` and the RNG states are restored, so on CPU
a resumed run ends with the same weights as an uninterrupted one. A ``last.pt`` from other params,
data, GAN checkpoint or code is not resumed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pipeline.checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint
from pipeline.config import Params, params_to_dict, training_identity
from pipeline.data.reader import (
    ShardDataset,
    collate,
    epoch_batches,
    read_summary,
    require_tasks,
    shard_resolution,
)
from pipeline.errors import ParamsError
from pipeline.generators import fixed_latents, generate
from pipeline.hashing import file_sha256, shard_set_fingerprint
from pipeline.inference import evaluate_outputs, fixed_samples, to_device
from pipeline.progress import progress_bar
from pipeline.runtime import loader_workers, runtime_session
from pipeline.train.bn_statistics import recalibrate
from pipeline.train.builders import model_config, selection_score
from pipeline.train.engine import (
    COMPLETE_MARKER,
    Engine,
    EngineState,
    Fingerprint,
    RunSpec,
    TrainingError,
    UnitResult,
    public_history,
    require_batches,
)
from pipeline.train.mgm_models import (
    JointModels,
    build_joint_models,
    build_optimizers,
    trains_generator,
)
from pipeline.train.mgm_snapshot import generator_export, snapshot
from pipeline.train.mgm_steps import (
    StepSettings,
    active_steps,
    joint_iteration,
    needs_weak_real,
    warmup_factor,
)
from pipeline.train.ssl import build_views
from pipeline.viz import save_image, scene_grid

__all__ = ["COMPLETE_MARKER", "GENERATOR_NAME", "mgm_fingerprint", "train_mgm"]

GENERATOR_NAME = "generator.pt"


def mgm_fingerprint(params: Params) -> Fingerprint:
    """What ``last.pt`` must share with this run to be resumed: params, data, GAN checkpoint, code."""
    identity: dict[str, Any] = {
        "mgm": training_identity(params.mgm),
        "model": training_identity(params.model),
        "loss": training_identity(params.loss),
        "ssl": training_identity(params.ssl),
        "gan": training_identity(params.gan),
    }
    data = {"shards": shard_set_fingerprint(params.shard.out)}
    if params.mgm.weak == "synthetic":
        data["gan_checkpoint"] = file_sha256(params.mgm.gan_checkpoint)
    return Fingerprint(identity, data, (__name__,))


class WeakRealImages:
    """Endless (images in [0, 1], scene labels) from the real ``weak`` split, restarted each epoch.

    The order within an epoch is a function of ``(seed, epoch, pass)``, so a resumed run reads the
    same images.
    """

    def __init__(self, folder: str | Path, seed: int, device: torch.device) -> None:
        self.dataset = ShardDataset(folder, "weak", shuffle=True, seed=seed, dense=())
        self.device = device
        self.epoch = 0
        self._passes = 0
        self._items: Iterator[dict[str, Any]] = iter(())

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._passes = epoch, 0
        self._items = iter(())

    def _next_item(self) -> dict[str, Any]:
        item = next(self._items, None)
        if item is None:
            self.dataset.set_epoch(self.epoch * 1000 + self._passes)
            self._passes += 1
            self._items = iter(self.dataset)
            item = next(self._items)
        return item

    def __call__(self, count: int) -> tuple[Tensor, Tensor]:
        items = [self._next_item() for _ in range(count)]
        batch = collate([{"rgb": item["rgb"], "scene": item["scene"]} for item in items])
        return batch["rgb"].to(self.device), batch["scene"].to(self.device)


def _check_weak_split(params: Params, summary: Mapping[str, Any]) -> None:
    weak = summary["splits"].get("weak", {}).get("samples", 0)
    if not weak:
        raise ParamsError(
            f"mgm.weak=real: the weak split of {params.shard.out} is empty (data.label_fraction is "
            f"{params.data.label_fraction}); lower data.label_fraction and re-shard, or set mgm.weak"
        )


def train_mgm(params: Params, *, progress: bool = True, max_epochs: int | None = None) -> dict[str, Any]:
    """Run (or resume, or just finalise) the joint training; return its summary.

    ``max_epochs`` stops after that many completed epochs, as a kill at an epoch boundary would.
    """
    cfg = params.mgm
    with runtime_session(params.runtime.device, params.runtime.threads) as runtime:
        if runtime.distributed:
            raise ParamsError("train_mgm runs in one process: start it without torchrun")
        loop = MgmLoop(params, runtime.device, progress)  # first: bad input fails before any file changes
        spec = RunSpec(
            name="train_mgm",
            folder=Path(cfg.out),
            units=cfg.epochs,
            unit="epoch",
            fingerprint=mgm_fingerprint(params),
            history_csv=Path(cfg.plots) / "history.csv",
            resume=cfg.resume,
            outputs=(GENERATOR_NAME, "samples/step-*.png"),
            keep_resume_state=params.runtime.keep_resume_state,
        )
        return Engine(spec, runtime, progress=progress).train(loop, max_units=max_epochs)


class MgmLoop:
    """The joint loop as an engine loop: a unit is an epoch of joint iterations, then validation."""

    def __init__(self, params: Params, device: torch.device, progress: bool) -> None:
        cfg = params.mgm
        self.params, self.device, self.progress = params, device, progress
        real = Path(params.shard.out)
        summary = read_summary(real)
        require_tasks(summary, real, params.model.tasks)
        self.scene_names = list(summary["scene_names"])
        self.num_classes = len(summary["class_names"])
        resolution = shard_resolution(summary, real)
        if needs_weak_real(params):
            _check_weak_split(params, summary)
        self.steps = active_steps(params)
        labelled = int(summary["splits"].get("train", {}).get("samples", 0))
        require_batches(labelled, cfg.batch_size, f"the train split of {real}", "mgm.batch_size")
        self.train_set = ShardDataset(real, "train", shuffle=True, seed=cfg.seed)
        workers = loader_workers(params.runtime.workers, device, len(self.train_set.shards))
        self.train_set.check_readers(workers)
        self.val_loader = DataLoader(ShardDataset(real, "val"), batch_size=cfg.batch_size, collate_fn=collate)
        self.clean_loader: DataLoader | None = None  # bn_mode recalibrate: labelled images, in order
        if cfg.bn_mode == "recalibrate":
            clean = ShardDataset(real, "train", dense=())
            self.clean_loader = DataLoader(clean, cfg.batch_size, collate_fn=collate, drop_last=True)
        self.loader = DataLoader(
            self.train_set, batch_size=cfg.batch_size, num_workers=workers, collate_fn=collate,
            drop_last=True, pin_memory=device.type == "cuda",
        )  # fmt: skip
        self.weak_source = WeakRealImages(real, cfg.seed, device) if needs_weak_real(params) else None
        self.models = build_joint_models(params, self.num_classes, self.scene_names, resolution, device)
        self.optimizers = build_optimizers(params, self.models)
        self.settings = StepSettings.from_params(params)
        self.augment = build_views(params.ssl, resolution)
        self.grid = (
            SampleGrid(params, self.models, self.scene_names, device)
            if self.models.generator is not None
            else None
        )
        self.model_config = model_config(params)
        self.generator_trains = trains_generator(params)
        self.step = 0
        self._best_extra: dict[str, Any] = {}

    def _snapshot(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        g_steps = self.step if self.generator_trains else 0
        return snapshot(self.models, self.model_config, self.scene_names, self.num_classes, g_steps, extra)

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._snapshot(),
            "kind": "mgm-joint-resume",
            "optimizers": self.optimizers.state_dict(),
            "step": self.step,
        }

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        models = self.models
        load_state_strict(models.net, state["model"], f"{where} (model)")
        if models.refinement is not None:
            load_state_strict(models.refinement, state["refinement"]["state"], f"{where} (refinement)")
        if models.ssl_head is not None:
            load_state_strict(models.ssl_head, state["ssl_head"], f"{where} (ssl_head)")
        for name in ("generator", "generator_ema", "discriminator"):
            module = getattr(models, name)
            if module is not None:
                load_state_strict(module, state[name], f"{where} ({name})")
        if models.guide is not None:
            load_state_strict(models.guide, state["guide"]["state"], f"{where} (guide)")
        try:
            self.optimizers.load_state_dict(state["optimizers"], where)
        except KeyError as err:
            raise CheckpointError(f"{where}: incomplete resume state ({err})") from err
        self.step = int(state["step"])

    def train_unit(self, unit: int) -> UnitResult:
        params = self.params
        self.train_set.set_epoch(unit)
        if self.weak_source is not None:
            self.weak_source.set_epoch(unit)
        started = time.perf_counter()
        means = self._train_epoch(unit)
        if self.clean_loader is not None:
            recalibrate(self.models.net, (batch["rgb"].to(self.device) for batch in self.clean_loader))
        val = evaluate_outputs(
            self.models.net, self.val_loader, list(params.model.tasks), self.num_classes, self.device,
            normal_kind=params.loss.normal,
        )  # fmt: skip
        lr = self.optimizers.lr()
        self.optimizers.step_schedulers()
        score = selection_score(val, params.loss.weights)
        row: dict[str, Any] = {"epoch": unit + 1, "step": self.step, "lr": lr}
        row |= {f"train_{name}": value for name, value in means.items()}
        row |= {
            f"val_{task}_{name}": value for task, metrics in val.items() for name, value in metrics.items()
        }
        row |= {"val_score": score, "seconds": round(time.perf_counter() - started, 1)}
        self._best_extra = {
            "epoch": unit + 1, "val": val, "val_score": score, "mgm": params_to_dict(params)["mgm"],
        }  # fmt: skip
        return UnitResult(row=row, score=score)

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        totals: dict[str, float] = {}
        count = 0
        per_epoch = epoch_batches(self.train_set, self.params.mgm.batch_size)
        bar = progress_bar(
            self.loader, desc=f"train_mgm epoch {epoch + 1}", unit="batch", leave=False,
            disable=not self.progress, total=per_epoch,
        )  # fmt: skip
        for batch in bar:
            batch = to_device(batch, self.device)
            factor = warmup_factor(self.step, per_epoch, self.params.mgm.aux_warmup_epochs)
            stats = joint_iteration(
                self.models, self.optimizers, batch, self.settings.warmed_up(factor), self.augment,
                self.steps, self.step, self.weak_source,
            )  # fmt: skip
            bad = {name: value for name, value in stats.items() if not math.isfinite(value)}
            if bad:
                raise TrainingError(
                    f"train_mgm: non-finite loss {bad} at iteration {self.step} (epoch {epoch + 1}); "
                    "lower mgm.lr / mgm.g_lr / mgm.d_lr or check the train shards"
                )
            self.step += 1
            count += 1
            for name, value in stats.items():
                totals[name] = totals.get(name, 0.0) + value
            bar.set_postfix(dense=f"{stats['dense']:.3f}")
            if self.grid is not None and self.step % self.grid.every == 0:
                self.grid.save(self.step)
        if not count:
            raise TrainingError(
                f"train_mgm: epoch {epoch + 1} had no batch to train on: the train split of "
                f"{self.params.shard.out} is smaller than mgm.batch_size ({self.params.mgm.batch_size}); "
                "lower mgm.batch_size or shard more training images"
            )
        return {name: value / count for name, value in totals.items()}

    def best_state(self) -> dict[str, Any]:
        return self._snapshot(self._best_extra)

    def finish(self, state: EngineState) -> None:
        """The final sample grid, and ``generator.pt`` exported from ``best.pt``."""
        out = Path(self.params.mgm.out)
        if self.grid is not None:
            self.grid.save(self.step)
        if self.models.generator is not None:
            save_checkpoint(generator_export(load_checkpoint(out / "best.pt")), out / GENERATOR_NAME)

    def summary(self, state: EngineState) -> dict[str, Any]:
        params = self.params
        history = public_history(state)
        best = state.best_row()
        last = history[-1] if history else {}
        return {
            "variant": {
                key: getattr(params.mgm, key) for key in ("weak", "joint", "refinement", "ssl", "guide")
            },
            "steps_run": list(self.steps),
            "epochs_done": state.units_done,
            "epochs": params.mgm.epochs,
            "iterations": self.step,
            "best_epoch": state.best_unit,
            "best_val_score": state.best_score if math.isfinite(state.best_score) else None,
            "best_val": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
            "last_train": {k[6:]: v for k, v in last.items() if k.startswith("train_")},
        }


class SampleGrid:
    """G's EMA on fixed latents and guide images: one row per scene, one column per latent."""

    def __init__(self, params: Params, models: JointModels, scene_names: list[str], device: torch.device):
        cfg = params.mgm
        assert models.generator_ema is not None
        self.models, self.scene_names, self.device = models, scene_names, device
        self.every, self.columns = cfg.sample_every, cfg.grid_columns
        self.folder = Path(cfg.out) / "samples"
        latent = models.generator_ema.config.latent_dim
        self.latents = fixed_latents(self.columns, latent, cfg.seed + 2).repeat(len(scene_names), 1)
        self.labels = torch.arange(len(scene_names)).repeat_interleave(self.columns)
        self.guide_images: Tensor | None = None
        if models.guide is not None:
            images = fixed_samples(params.shard.out, "train", self.columns)["rgb"]
            index = torch.arange(self.columns) % len(images)
            self.guide_images = images[index].repeat(len(scene_names), 1, 1, 1)

    @torch.no_grad()
    def save(self, step: int) -> Path:
        """Write ``samples/step-NNNNNN.png`` (eval mode, changes no state) and return its path."""
        models = self.models
        assert models.generator_ema is not None
        latents = self.latents.to(self.device)
        modes = {name: module.training for name, module in models.parts().items()}
        try:
            if models.guide is not None and self.guide_images is not None:
                models.net.eval()
                models.guide.eval()
                latents = models.guide(latents, models.net.features(self.guide_images.to(self.device)))
            images = generate(models.generator_ema, latents, self.labels, 64, self.device)
        finally:
            for name, module in models.parts().items():
                module.train(modes[name])
        path = self.folder / f"step-{step:06d}.png"
        save_image(scene_grid(images, self.columns, self.scene_names), path)
        return path
