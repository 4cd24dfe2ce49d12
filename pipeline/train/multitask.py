"""Train single-task (``st``: one model per task) or multi-task (``mt``) networks on real shards, or
the multi-task network on real shards mixed with weakly labelled ones (``mgm``).

``mgm`` reads :class:`~pipeline.data.mixing.MixedShardDataset`: ``mix.synthetic_ratio`` weak samples
(``mix.weak``: the synthetic set ``mix.synthetic`` or the real ``weak`` split) per labelled one. The
dense losses apply to labelled samples; on weak samples M gets the scene loss through the frozen
refinement network of ``mix.refinement`` and the SSL loss (:mod:`pipeline.train.weak_losses`). At
ratio 0 nothing of that is built and the run is ``mt``'s, step for step.

One model's run lives in ``<train_mt.out>/<variant>[/<task>]``: ``last.pt`` (everything needed to
resume: model, loss, optimizer, scheduler, RNG states, step/epoch, history, best score),
``best.pt`` (the weights with the lowest weighted validation loss) and, once the run has finished,
``training.json``. Per-epoch rows go to ``<train_mt.plots>/<variant>/<name>.csv``.

Resume: every epoch ends with an atomic ``last.pt``. A rerun whose params and data match the
checkpoint's fingerprint continues after the last completed epoch; a killed run loses at most the
epoch in progress. The data order is a function of ``(seed, epoch)`` (``ShardDataset.set_epoch``)
and the RNG states are restored at the epoch boundary, so on CPU the resumed run reaches the same
weights, bit for bit, as an uninterrupted one. A checkpoint from other params, data or training
code is not resumed: the run starts afresh (and says so). A finished model with the same
fingerprint is not trained again (delete its folder to retrain it).

Training drops the last incomplete batch of each rank (and loader worker): a batch of one image
breaks batch norm at the encoder's coarsest scale, and the order changes every epoch, so the
dropped samples differ. Under ``torchrun`` every rank reads its own shards; ranks may hold
different numbers of batches (shards have unequal sizes), so the epoch runs inside
``torch.distributed.algorithms.join.Join``: a rank that runs out of data shadows the gradient
all-reduces of the others until all are done, and the final parameters are broadcast from the last
rank to finish, so no rank hangs in a collective. Rank 0 writes every file.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.algorithms.join import Join
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.atomic import write_bytes_atomic, write_json_atomic
from pipeline.config import Params, params_to_dict
from pipeline.data.mixing import MixedShardDataset, weak_set
from pipeline.data.reader import ShardDataset, collate, read_summary
from pipeline.errors import PipelineError
from pipeline.evaluation import evaluate_outputs, to_device
from pipeline.metrics.dense import LossMeter
from pipeline.models.multitask import TASKS, MultiTaskNet, build_multitask_net
from pipeline.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pipeline.train.history import write_history_csv
from pipeline.train.losses import MultiTaskLoss
from pipeline.train.runtime import Runtime, seed_everything, start_runtime, stop_runtime
from pipeline.train.weak_losses import WeakLosses, build_weak_losses

COMPLETE_MARKER = "training.json"
_NOT_FINGERPRINTED = ("variants", "workers", "threads", "device", "channels_last", "bf16", "out", "plots")
_TRAINING_CODE = (
    "models/multitask.py",
    "train/*.py",
    "metrics/dense.py",
    "evaluation.py",
    "data/reader.py",
    "data/codec.py",
    "data/mixing.py",
    "models/refinement.py",
    "models/ssl.py",
)


class TrainingError(PipelineError):
    """Training cannot go on (a non-finite loss; the message names the step and the task)."""


@dataclass(frozen=True)
class ModelRun:
    """One model to train: ``mt`` or ``mgm`` (all tasks) or one task of the ``st`` variant."""

    variant: str
    name: str
    tasks: tuple[str, ...]
    folder: Path
    history_csv: Path


def model_runs(params: Params, variant: str) -> list[ModelRun]:
    """The models a variant trains: ``st`` one per task, ``mt`` and ``mgm`` one with all tasks."""
    out, plots = Path(params.train_mt.out) / variant, Path(params.train_mt.plots) / variant
    tasks = tuple(params.model.tasks)
    if variant in ("mt", "mgm"):
        return [ModelRun(variant, variant, tasks, out, plots / f"{variant}.csv")]
    if variant == "st":
        return [ModelRun("st", task, (task,), out / task, plots / f"{task}.csv") for task in tasks]
    raise PipelineError(f"unknown variant {variant!r} (st | mt | mgm)")


def build_model(params: Params, tasks: Sequence[str], num_classes: int) -> MultiTaskNet:
    """M for ``tasks`` as the ``model`` params describe it."""
    model = params.model
    return build_multitask_net(
        tasks,
        num_classes,
        encoder=model.encoder,
        pretrained=model.pretrained,
        encoder_widths=model.encoder_widths,
        decoder_channels=model.decoder_channels,
    )


def build_loss(params: Params, tasks: Sequence[str]) -> MultiTaskLoss:
    cfg = params.train_mt
    return MultiTaskLoss(
        tasks,
        {task: TASKS[task].loss for task in tasks},
        weights=cfg.loss_weights,
        weighting=cfg.weighting,
        normal_kind=cfg.normal_loss,
    )


def build_optimizer(params: Params, parameters: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    cfg = params.train_mt
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(params: Params, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch; ``None`` for a constant learning rate."""
    cfg = params.train_mt
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_epochs, gamma=cfg.step_gamma)
    return None


def data_fingerprint(folder: str | Path) -> str:
    """Hash of the shard set's summary and manifest: changes whenever the shards change."""
    digest = hashlib.sha256()
    for name in ("summary.json", "manifest.parquet"):
        path = Path(folder) / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


def code_fingerprint(patterns: Sequence[str] = _TRAINING_CODE) -> str:
    """Hash of the code that defines training (files of ``pipeline/`` matching ``patterns``; default:
    models, losses, metrics, loop, reader): a checkpoint written by other code is not resumed, as DVC
    reruns the stage when that code changes."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(package.glob(pattern)):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_fingerprint(params: Params, run: ModelRun) -> str:
    """What a checkpoint must share with this run to be resumed: params, tasks, data and code (for
    ``mgm`` also the ``mix`` params, the weak set and the refinement checkpoint it uses)."""
    train = {k: v for k, v in params_to_dict(params)["train_mt"].items() if k not in _NOT_FINGERPRINTED}
    payload = {
        "model": params_to_dict(params)["model"],
        "train_mt": train,
        "tasks": list(run.tasks),
        "data": data_fingerprint(params.shard.out),
        "code": code_fingerprint(),
    }
    if run.variant == "mgm":
        payload["mix"] = mix_fingerprint(params)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def mix_fingerprint(params: Params) -> dict[str, Any]:
    """The ``mix`` params plus hashes of the weak set and of R's checkpoint where they are used."""
    mix = params.mix
    payload: dict[str, Any] = {"params": params_to_dict(params)["mix"]}
    if mix.synthetic_ratio > 0:
        payload["weak"] = data_fingerprint(weak_set(params)[0])
        refinement = Path(mix.refinement)
        if mix.scene_weight > 0 and refinement.is_file():
            payload["refinement"] = hashlib.sha256(refinement.read_bytes()).hexdigest()
    return payload


class _Trainable(nn.Module):
    """Network + loss (+ the weak-sample losses of ``mgm``) in one module, so DDP synchronises every
    trained parameter."""

    def __init__(
        self,
        net: MultiTaskNet,
        criterion: MultiTaskLoss,
        autocast: Callable[[], Any],
        weak: WeakLosses | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.criterion = criterion
        self.autocast = autocast
        self.weak = weak

    def forward(self, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        rgb = batch["rgb"]
        with self.autocast():
            features = self.net.encoder(rgb)
            outputs = self.net.decode(features, (rgb.shape[-2], rgb.shape[-1]))
        sums = self.criterion.task_losses(outputs, batch)
        means = {task: value.mean() for task, value in sums.items()}
        loss = self.criterion.combine(means)
        if self.weak is not None:
            with self.autocast():
                weak_sums = self.weak(self.net, features, batch)
            loss = loss + self.weak.combine(weak_sums)
            sums |= weak_sums
        return loss, sums


def autocast_factory(device: torch.device, bf16: bool) -> Callable[[], Any]:
    """A context-manager factory: bfloat16 autocast when ``bf16``, else nothing."""
    if not bf16:
        return nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def check_finite(sums: Mapping[str, Any], step: int, epoch: int, run: ModelRun) -> None:
    """Stop with a clear error when a task's loss is NaN or infinite."""
    for task, value in sums.items():
        loss = float(value.mean().detach())
        if not math.isfinite(loss):
            raise TrainingError(
                f"model {run.variant}/{run.name}: loss of task {task!r} is {loss} at step {step} "
                f"(epoch {epoch + 1}); lower train_mt.lr or check the {task} labels in the train shards"
            )


def selection_score(val: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> float:
    """Weighted sum of the per-task mean validation losses (lower is better): picks ``best.pt``."""
    return sum(float(weights.get(task, 1.0)) * metrics["loss"] for task, metrics in val.items())


def train_mt(
    params: Params,
    variant: str,
    *,
    progress: bool = True,
    max_epochs: int | None = None,
    keys_log: str | Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Train every model of ``variant``; returns ``{name: summary}`` (rank 0's view).

    ``max_epochs`` stops after that many completed epochs (as a kill at an epoch boundary would;
    the run is left unfinished and resumes on the next call). ``keys_log`` writes the sample keys
    each rank trained on, one file per model, epoch and rank, to check the data partition.
    """
    return train_variants(params, [variant], progress=progress, max_epochs=max_epochs, keys_log=keys_log)[
        variant
    ]


def train_variants(
    params: Params,
    variants: Sequence[str],
    *,
    progress: bool = True,
    max_epochs: int | None = None,
    keys_log: str | Path | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`train_mt` for several variants in one runtime (one process group under torchrun)."""
    cfg = params.train_mt
    threads = torch.get_num_threads()
    runtime = start_runtime(cfg.device, cfg.threads or None)
    try:
        results: dict[str, dict[str, dict[str, Any]]] = {}
        for variant in variants:
            results[variant] = {
                run.name: train_model(
                    params, run, runtime, progress=progress, max_epochs=max_epochs, keys_log=keys_log
                )
                for run in model_runs(params, variant)
            }
        return results
    finally:
        stop_runtime(runtime)
        torch.set_num_threads(threads)


def _loader(
    dataset: ShardDataset, batch_size: int, workers: int, device: torch.device, drop_last: bool = False
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
    )


def train_model(
    params: Params,
    run: ModelRun,
    runtime: Runtime,
    *,
    progress: bool = True,
    max_epochs: int | None = None,
    keys_log: str | Path | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just finalise) one model; see the module docstring."""
    cfg = params.train_mt
    device = runtime.device
    shards = Path(params.shard.out)
    summary = read_summary(shards)
    num_classes = len(summary["class_names"])
    train_set = _train_set(params, run)
    val_set = ShardDataset(shards, "val")

    seed_everything(cfg.seed)
    net = build_model(params, run.tasks, num_classes).to(device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    criterion = build_loss(params, run.tasks).to(device)
    weak = None  # ratio 0 builds nothing more, so the run is mt's, step for step
    if isinstance(train_set, MixedShardDataset) and train_set.weak_count:
        resolution = int(summary.get("resolution", params.data.resolution))
        weak = build_weak_losses(
            params, net, run.tasks, num_classes, summary["scene_names"], resolution, device
        )
    extra = {"ssl_head": weak.ssl_head} if weak is not None and weak.ssl_head is not None else {}
    trained = [*net.parameters(), *criterion.parameters()]
    optimizer = build_optimizer(params, [*trained, *(p for m in extra.values() for p in m.parameters())])
    scheduler = build_scheduler(params, optimizer)
    fingerprint = run_fingerprint(params, run)
    state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best_score": math.inf, "best_epoch": 0}

    last_path, best_path = run.folder / "last.pt", run.folder / "best.pt"
    if last_path.is_file():
        state = _resume(last_path, fingerprint, net, criterion, optimizer, scheduler, state, runtime, extra)
    if runtime.is_main:
        (run.folder / COMPLETE_MARKER).unlink(missing_ok=True)

    trainable: nn.Module = _Trainable(net, criterion, autocast_factory(device, cfg.bf16), weak)
    if runtime.distributed:
        trainable = DistributedDataParallel(
            trainable,
            device_ids=[device] if device.type == "cuda" else None,
            find_unused_parameters=weak is not None,  # a batch without weak samples leaves the head idle
        )
    train_loader = _loader(train_set, cfg.batch_size, cfg.workers, device, drop_last=True)
    val_loader = _loader(val_set, cfg.batch_size, cfg.workers, device)
    last_epoch = cfg.epochs if max_epochs is None else min(cfg.epochs, max_epochs)

    for epoch in range(state["epoch"], last_epoch):
        train_set.set_epoch(epoch)
        keys: list[str] = []
        loss_names = [*run.tasks, *(weak.names if weak is not None else [])]
        train_losses = _train_epoch(
            trainable, optimizer, train_loader, run, loss_names, runtime, state, epoch, keys,
            cfg.channels_last, progress,
        )  # fmt: skip
        val = evaluate_outputs(
            net, val_loader, run.tasks, num_classes, device,
            normal_kind=cfg.normal_loss, channels_last=cfg.channels_last, bf16=cfg.bf16,
        )  # fmt: skip
        if scheduler is not None:
            scheduler.step()
        score = selection_score(val, cfg.loss_weights)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": state["step"],
            "lr": optimizer.param_groups[0]["lr"],
        }
        row |= {f"train_{task}_loss": value for task, value in train_losses.items()}
        row |= {
            f"val_{task}_{name}": value for task, metrics in val.items() for name, value in metrics.items()
        }
        row["val_score"] = score
        state["history"].append(row)
        state["epoch"] = epoch + 1
        improved = score < state["best_score"]
        if improved:
            state["best_score"], state["best_epoch"] = score, epoch + 1
        if keys_log is not None:
            _write_keys(keys_log, run, epoch, runtime.rank, keys)
        if runtime.is_main:
            if improved:
                save_checkpoint(_best_state(net, run, num_classes, epoch + 1, val, score), best_path)
            last = _last_state(net, criterion, optimizer, scheduler, state, fingerprint, run, num_classes)
            save_checkpoint(last | {name: module.state_dict() for name, module in extra.items()}, last_path)
            write_history_csv(state["history"], run.history_csv)
        if runtime.distributed:
            dist.barrier()

    summary = _summary(run, state, cfg.epochs)
    if runtime.is_main and state["epoch"] >= cfg.epochs:
        write_history_csv(state["history"], run.history_csv)
        write_json_atomic(run.folder / COMPLETE_MARKER, summary)
    return summary


def _train_set(params: Params, run: ModelRun) -> ShardDataset | MixedShardDataset:
    """The labelled train split, mixed with the weak set for ``mgm``."""
    cfg, shards = params.train_mt, Path(params.shard.out)
    if run.variant != "mgm":
        return ShardDataset(shards, "train", shuffle=True, seed=cfg.seed)
    weak_folder, weak_split = weak_set(params)
    return MixedShardDataset(
        shards, weak_folder, weak_split, params.mix.synthetic_ratio, shuffle=True, seed=cfg.seed
    )


def _resume(
    path: Path,
    fingerprint: str,
    net: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    runtime: Runtime,
    extra: Mapping[str, nn.Module],
) -> dict[str, Any]:
    checkpoint = load_checkpoint(path, map_location=runtime.device)
    if checkpoint.get("fingerprint") != fingerprint:
        if runtime.is_main:
            print(f"{path}: written with other params, data or code; training this model afresh")
        return state
    load_state_strict(net, checkpoint["model"], str(path))
    load_state_strict(criterion, checkpoint["loss"], str(path))
    for name, module in extra.items():
        load_state_strict(module, checkpoint[name], f"{path} ({name})")
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: optimizer/scheduler state does not match: {err}") from err
    set_rng_state(checkpoint["rng"])
    if runtime.is_main:
        print(f"resuming {path} after epoch {checkpoint['epoch']}")
    return {name: checkpoint[name] for name in ("epoch", "step", "history", "best_score", "best_epoch")}


def _train_epoch(
    trainable: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    run: ModelRun,
    loss_names: Sequence[str],
    runtime: Runtime,
    state: dict[str, Any],
    epoch: int,
    keys: list[str],
    channels_last: bool,
    progress: bool,
) -> dict[str, float]:
    trainable.train()
    meters = {name: LossMeter() for name in loss_names}
    bar = tqdm(
        loader, desc=f"{run.variant}/{run.name} epoch {epoch + 1}", unit="batch", leave=False,
        disable=not (progress and runtime.is_main),
    )  # fmt: skip
    join = Join([trainable]) if isinstance(trainable, DistributedDataParallel) else nullcontext()
    with join:
        for batch in bar:
            keys += batch["key"]
            batch = to_device(batch, runtime.device, channels_last)
            loss, sums = trainable(batch)
            check_finite(sums, state["step"], epoch, run)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state["step"] += 1
            for task, value in sums.items():
                meters[task].update(value.total, value.count)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    for meter in meters.values():
        meter.all_reduce()
    return {task: meter.compute()["loss"] for task, meter in meters.items()}


def _best_state(
    net: nn.Module, run: ModelRun, num_classes: int, epoch: int, val: dict[str, Any], score: float
) -> dict[str, Any]:
    return {
        "model": net.state_dict(),
        "tasks": list(run.tasks),
        "num_classes": num_classes,
        "epoch": epoch,
        "val": val,
        "val_score": score,
    }


def _last_state(
    net: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    fingerprint: str,
    run: ModelRun,
    num_classes: int,
) -> dict[str, Any]:
    return {
        "model": net.state_dict(),
        "loss": criterion.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(),
        "fingerprint": fingerprint,
        "tasks": list(run.tasks),
        "num_classes": num_classes,
        **state,
    }


def _summary(run: ModelRun, state: dict[str, Any], epochs: int) -> dict[str, Any]:
    history = state["history"]
    best = history[state["best_epoch"] - 1] if history and state["best_epoch"] else {}
    return {
        "tasks": list(run.tasks),
        "epochs_done": state["epoch"],
        "epochs": epochs,
        "steps": state["step"],
        "best_epoch": state["best_epoch"],
        "best_val_score": state["best_score"] if math.isfinite(state["best_score"]) else None,
        "best_val": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
        "last_train_loss": {
            k[6:-5]: v for k, v in (history[-1] if history else {}).items() if k.startswith("train_")
        },
    }


def _write_keys(folder: str | Path, run: ModelRun, epoch: int, rank: int, keys: Sequence[str]) -> None:
    path = Path(folder) / f"{run.variant}-{run.name}-epoch{epoch + 1}-rank{rank}.txt"
    write_bytes_atomic(path, ("\n".join(keys) + "\n").encode())
