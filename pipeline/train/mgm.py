"""The ``train_mgm`` stage: joint training of M, R, the SSL head and the guided G/D (MGM).

Each labelled batch of the real ``train`` split runs the steps of
:mod:`pipeline.train.mgm_steps` that the variant switches on (``mgm.weak``, ``mgm.joint``,
``mgm.refinement``, ``mgm.ssl``). Outputs under ``mgm.out`` (default ``models/mgm``):

* ``last.pt``: everything needed to resume (all parts, optimizers, schedulers, RNG states, epoch,
  step, history, best score), written atomically after every epoch;
* ``best.pt``: the snapshot (:func:`~pipeline.train.mgm_generator.snapshot`) of the epoch with the
  lowest validation score (``train_mt``'s :func:`~pipeline.train.multitask.selection_score`); its
  ``model`` loads like a ``train_mt`` best.pt, its ``refinement`` is the R that ``mix.refinement``
  names;
* ``generator.pt`` (with a generator): ``best.pt`` as a ``train_gan`` checkpoint for ``synthesize``;
* ``samples/step-NNNNNN.png``: G's EMA, one row per scene, one column per fixed latent and guide
  image, every ``mgm.sample_every`` iterations and at the end;
* ``training.json``: the summary, written last (a run without it has not finished).

``mgm.plots``/``history.csv`` has one row per epoch (mean step losses, validation metrics, score).

Resume: as ``train_mt``, at epoch boundaries. The data order is a function of ``(seed, epoch)``
and the RNG states are restored, so on CPU a resumed run ends with the same weights as an
uninterrupted one. A ``last.pt`` from other params, data, GAN checkpoint or code is not resumed.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.atomic import write_json_atomic
from pipeline.config import Params, params_to_dict
from pipeline.data.reader import ShardDataset, collate, read_summary
from pipeline.errors import ParamsError
from pipeline.evaluation import evaluate_outputs, fixed_samples, to_device
from pipeline.synthesis import file_sha256
from pipeline.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pipeline.train.gan import fixed_latents, generate, scene_grid, training_config
from pipeline.train.history import write_history_csv
from pipeline.train.mgm_generator import generator_export, snapshot
from pipeline.train.mgm_models import (
    JointModels,
    JointOptimizers,
    build_joint_models,
    build_optimizers,
    trains_generator,
)
from pipeline.train.mgm_steps import StepSettings, active_steps, joint_iteration, needs_weak_real
from pipeline.train.multitask import (
    TrainingError,
    code_fingerprint,
    data_fingerprint,
    selection_score,
)
from pipeline.train.runtime import start_runtime, stop_runtime
from pipeline.train.ssl import BatchAugment
from pipeline.viz import save_image

COMPLETE_MARKER = "training.json"
GENERATOR_NAME = "generator.pt"
_NOT_FINGERPRINTED = (
    "workers",
    "threads",
    "device",
    "resume",
    "out",
    "plots",
    "sample_every",
    "grid_columns",
)
_MGM_CODE = ("models/*.py", "train/mgm*.py", "train/ssl.py")


def mgm_fingerprint(params: Params) -> str:
    """What ``last.pt`` must share with this run to be resumed: params, data, GAN checkpoint, code."""
    everything = params_to_dict(params)
    cfg = {k: v for k, v in everything["mgm"].items() if k not in _NOT_FINGERPRINTED}
    train_mt = everything["train_mt"]
    payload: dict[str, Any] = {
        "mgm": cfg,
        "model": everything["model"],
        "loss": {key: train_mt[key] for key in ("loss_weights", "weighting", "normal_loss")},
        "gan": training_config(params.gan),
        "data": data_fingerprint(params.shard.out),
        "code": [code_fingerprint(), code_fingerprint(_MGM_CODE)],
    }
    if params.mgm.weak == "synthetic":
        payload["gan_checkpoint"] = file_sha256(params.mgm.gan_checkpoint)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class WeakRealImages:
    """Endless (images in [0, 1], scene labels) from the real ``weak`` split, restarted each epoch.

    The order within an epoch is a function of ``(seed, epoch, pass)``, so a resumed run reads the
    same images.
    """

    def __init__(self, folder: str | Path, seed: int, device: torch.device) -> None:
        self.dataset = ShardDataset(folder, "weak", shuffle=True, seed=seed)
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
    threads = torch.get_num_threads()
    runtime = start_runtime(cfg.device, cfg.threads or None)
    try:
        if runtime.distributed:
            raise ParamsError("train_mgm runs in one process: start it without torchrun")
        return _train(params, runtime.device, progress, max_epochs)
    finally:
        stop_runtime(runtime)
        torch.set_num_threads(threads)


def _train(params: Params, device: torch.device, progress: bool, max_epochs: int | None) -> dict[str, Any]:
    cfg = params.mgm
    real = Path(params.shard.out)
    summary = read_summary(real)
    scene_names = list(summary["scene_names"])
    num_classes = len(summary["class_names"])
    resolution = int(summary.get("resolution") or params.data.resolution)
    if needs_weak_real(params):
        _check_weak_split(params, summary)
    steps = active_steps(params)
    train_set = ShardDataset(real, "train", shuffle=True, seed=cfg.seed)
    val_loader = DataLoader(ShardDataset(real, "val"), batch_size=cfg.batch_size, collate_fn=collate)
    loader = DataLoader(
        train_set, batch_size=cfg.batch_size, num_workers=cfg.workers, collate_fn=collate, drop_last=True,
        pin_memory=device.type == "cuda",
    )  # fmt: skip
    weak_source = WeakRealImages(real, cfg.seed, device) if needs_weak_real(params) else None

    models = build_joint_models(params, num_classes, scene_names, resolution, device)
    optimizers = build_optimizers(params, models)
    settings = StepSettings.from_params(params)
    augment = BatchAugment(resolution)
    fingerprint = mgm_fingerprint(params)
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best_score": math.inf, "best_epoch": 0}
    saved = load_checkpoint(last_path, map_location=device) if cfg.resume and last_path.is_file() else None
    if saved is not None and saved.get("fingerprint") == fingerprint:
        state = _restore(saved, last_path, models, optimizers)
        print(f"train_mgm: resuming {last_path} after epoch {state['epoch']}", file=sys.stderr)
    else:
        if saved is not None:
            notice = f"train_mgm: {last_path} was written with other params, data or code; starting afresh"
            print(notice, file=sys.stderr)
        for stale in (last_path, best_path, out / GENERATOR_NAME):
            stale.unlink(missing_ok=True)
        saved = None
    (out / COMPLETE_MARKER).unlink(missing_ok=True)
    grid = SampleGrid(params, models, scene_names, device) if models.generator is not None else None
    if saved is not None:
        set_rng_state(saved["rng"])  # last: nothing set up above shifts the restored streams

    model_params = params_to_dict(params)["model"]
    model_config = {key: model_params[key] for key in ("encoder", "encoder_widths", "decoder_channels")}
    generator_trains = trains_generator(params)
    last_epoch = cfg.epochs if max_epochs is None else min(cfg.epochs, max_epochs)
    tasks = list(params.model.tasks)
    for epoch in range(state["epoch"], last_epoch):
        train_set.set_epoch(epoch)
        if weak_source is not None:
            weak_source.set_epoch(epoch)
        started = time.perf_counter()
        means = _train_epoch(
            models, optimizers, loader, settings, augment, steps, weak_source, state, epoch, grid, device,
            progress,
        )  # fmt: skip
        val = evaluate_outputs(
            models.net, val_loader, tasks, num_classes, device, normal_kind=params.train_mt.normal_loss
        )
        lr = optimizers.lr()
        optimizers.step_schedulers()
        score = selection_score(val, params.train_mt.loss_weights)
        row: dict[str, Any] = {"epoch": epoch + 1, "step": state["step"], "lr": lr}
        row |= {f"train_{name}": value for name, value in means.items()}
        row |= {
            f"val_{task}_{name}": value for task, metrics in val.items() for name, value in metrics.items()
        }
        row |= {"val_score": score, "seconds": round(time.perf_counter() - started, 1)}
        state["history"].append(row)
        state["epoch"] = epoch + 1
        g_steps = state["step"] if generator_trains else 0
        if score < state["best_score"]:
            state["best_score"], state["best_epoch"] = score, epoch + 1
            extra = {"epoch": epoch + 1, "val": val, "val_score": score, "mgm": params_to_dict(params)["mgm"]}
            save_checkpoint(
                snapshot(models, model_config, scene_names, num_classes, g_steps, extra), best_path
            )
        weights = snapshot(models, model_config, scene_names, num_classes, g_steps)
        save_checkpoint(_last_state(weights, optimizers, state, fingerprint), last_path)
        write_history_csv(state["history"], Path(cfg.plots) / "history.csv")

    result = _summary(params, state, steps)
    if state["epoch"] >= cfg.epochs:
        if grid is not None:
            grid.save(state["step"])
        if models.generator is not None:
            save_checkpoint(generator_export(load_checkpoint(best_path)), out / GENERATOR_NAME)
        write_history_csv(state["history"], Path(cfg.plots) / "history.csv")
        write_json_atomic(out / COMPLETE_MARKER, result)
    return result


def _train_epoch(
    models: JointModels,
    optimizers: JointOptimizers,
    loader: DataLoader,
    settings: StepSettings,
    augment: BatchAugment,
    steps: tuple[str, ...],
    weak_source: WeakRealImages | None,
    state: dict[str, Any],
    epoch: int,
    grid: SampleGrid | None,
    device: torch.device,
    progress: bool,
) -> dict[str, float]:
    totals: dict[str, float] = {}
    count = 0
    bar = tqdm(loader, desc=f"train_mgm epoch {epoch + 1}", unit="batch", leave=False, disable=not progress)
    for batch in bar:
        batch = to_device(batch, device)
        stats = joint_iteration(
            models, optimizers, batch, settings, augment, steps, state["step"], weak_source
        )
        bad = {name: value for name, value in stats.items() if not math.isfinite(value)}
        if bad:
            raise TrainingError(
                f"train_mgm: non-finite loss {bad} at iteration {state['step']} (epoch {epoch + 1}); "
                "lower mgm.lr / mgm.g_lr / mgm.d_lr or check the train shards"
            )
        state["step"] += 1
        count += 1
        for name, value in stats.items():
            totals[name] = totals.get(name, 0.0) + value
        bar.set_postfix(dense=f"{stats['dense']:.3f}")
        if grid is not None and state["step"] % grid.every == 0:
            grid.save(state["step"])
    return {name: value / max(count, 1) for name, value in totals.items()}


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


def _last_state(
    weights: Mapping[str, Any], optimizers: JointOptimizers, state: dict[str, Any], fingerprint: str
) -> dict[str, Any]:
    """A snapshot plus what resuming needs (optimizers, RNG states, loop state, fingerprint)."""
    return {
        **weights,
        "kind": "mgm-joint-resume",
        "optimizers": optimizers.state_dict(),
        "rng": rng_state(),
        "fingerprint": fingerprint,
        **state,
    }


def _restore(
    saved: Mapping[str, Any], path: Path, models: JointModels, optimizers: JointOptimizers
) -> dict[str, Any]:
    where = str(path)
    load_state_strict(models.net, saved["model"], f"{where} (model)")
    if models.refinement is not None:
        load_state_strict(models.refinement, saved["refinement"]["state"], f"{where} (refinement)")
    if models.ssl_head is not None:
        load_state_strict(models.ssl_head, saved["ssl_head"], f"{where} (ssl_head)")
    for name in ("generator", "generator_ema", "discriminator"):
        module = getattr(models, name)
        if module is not None:
            load_state_strict(module, saved[name], f"{where} ({name})")
    if models.guide is not None:
        load_state_strict(models.guide, saved["guide"]["state"], f"{where} (guide)")
    try:
        optimizers.load_state_dict(saved["optimizers"], where)
    except KeyError as err:
        raise CheckpointError(f"{where}: incomplete resume state ({err})") from err
    return {name: saved[name] for name in ("epoch", "step", "history", "best_score", "best_epoch")}


def _summary(params: Params, state: dict[str, Any], steps: tuple[str, ...]) -> dict[str, Any]:
    history = state["history"]
    best = history[state["best_epoch"] - 1] if history and state["best_epoch"] else {}
    last = history[-1] if history else {}
    return {
        "variant": {key: getattr(params.mgm, key) for key in ("weak", "joint", "refinement", "ssl", "guide")},
        "steps_run": list(steps),
        "epochs_done": state["epoch"],
        "epochs": params.mgm.epochs,
        "iterations": state["step"],
        "best_epoch": state["best_epoch"],
        "best_val_score": state["best_score"] if math.isfinite(state["best_score"]) else None,
        "best_val": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
        "last_train": {k[6:]: v for k, v in last.items() if k.startswith("train_")},
    }
