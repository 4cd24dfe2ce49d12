"""Train single-task (``st``: one model per task) or multi-task (``mt``) networks on real shards, or
the multi-task network on real shards mixed with weakly labelled ones (``mgm-shards``).

``mgm-shards`` reads :class:`~pipeline.data.mixing.MixedShardDataset`: ``mix.synthetic_ratio`` weak samples
(``mix.weak``: the synthetic set ``mix.synthetic`` or the real ``weak`` split) per labelled one. The
dense losses apply to labelled samples; on weak samples M gets the scene loss through the frozen
refinement network R and the SSL loss, and with ``mix.real_steps`` R trains on M's predictions of
the labelled samples and the SSL loss applies to them too (MGM without the GAN step, the authors'
MGM-light; :mod:`pipeline.train.weak_losses`). At ratio 0 nothing of that is built and the run is
``mt``'s, step for step.

One model's run lives in ``<train_mt.out>/<variant>[/<task>]``: ``last.pt`` (everything needed to
resume: model, loss, optimizer, scheduler, RNG states, step/epoch, history, best score),
``best.pt`` (the weights with the lowest weighted validation loss) and, once the run has finished,
``training.json``. Per-epoch rows go to ``<train_mt.plots>/<variant>/<name>.csv``.

Each model runs on the training engine (:mod:`pipeline.train.engine`), one unit per epoch: an
atomic ``last.pt`` after every epoch, resume only under the same params, data and code. The data
order is a function of ``(seed, epoch)`` (``ShardDataset.set_epoch``), so on CPU a resumed run
reaches the same weights, bit for bit, as an uninterrupted one. A finished model with the same
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

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributed.algorithms.join import Join
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from pipeline.atomic import write_bytes_atomic
from pipeline.checkpoint import CheckpointError, load_state_strict
from pipeline.config import Params, training_identity
from pipeline.data.mixing import MixedShardDataset, weak_set
from pipeline.data.reader import (
    ShardDataset,
    collate,
    epoch_batches,
    read_summary,
    require_tasks,
    shard_resolution,
)
from pipeline.hashing import file_sha256, shard_set_fingerprint
from pipeline.inference import evaluate_outputs, to_device
from pipeline.metrics.dense import LossMeter
from pipeline.models.multitask import MultiTaskNet
from pipeline.progress import progress_bar
from pipeline.runtime import Runtime, device_flag, loader_workers, runtime_session, seed_everything
from pipeline.tasks.losses import MultiTaskLoss
from pipeline.train.builders import (
    MIXED_VARIANT,
    ModelRun,
    autocast_factory,
    build_loss,
    build_model,
    build_optimizer,
    build_scheduler,
    model_config,
    model_runs,
    selection_score,
)
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
from pipeline.train.weak_losses import WeakLosses, build_weak_losses

__all__ = ["COMPLETE_MARKER", "TrainingError", "run_fingerprint", "train_mt", "train_variants"]


def run_fingerprint(params: Params, run: ModelRun) -> Fingerprint:
    """What a checkpoint must share with this run to be resumed: the ``model`` and ``train_mt``
    params, the tasks, the shards and this loop's code (for ``mgm-shards`` also the ``mix`` params, the weak
    set and the refinement checkpoint it uses)."""
    identity: dict[str, Any] = {
        "model": training_identity(params.model),
        "train_mt": training_identity(params.train_mt),
        "loss": training_identity(params.loss),
        "tasks": list(run.tasks),
    }
    data = {"shards": shard_set_fingerprint(params.shard.out)}
    if run.variant == MIXED_VARIANT:
        mix = params.mix
        identity["mix"] = training_identity(mix)
        identity["ssl"] = training_identity(params.ssl)
        if mix.synthetic_ratio > 0:
            data["weak"] = shard_set_fingerprint(weak_set(params)[0])
            refinement = Path(mix.refinement)
            reads_checkpoint = mix.scene_weight > 0 or (mix.ssl != "none" and mix.ssl_weight > 0)
            if mix.auxiliary_init == "checkpoint" and reads_checkpoint and refinement.is_file():
                data["refinement"] = file_sha256(refinement)
    return Fingerprint(identity, data, (__name__,))


class _Trainable(nn.Module):
    """Network + loss (+ the weak-sample losses of ``mgm-shards``) in one module, so DDP synchronises every
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
            features = self.net.encode(rgb)
            decoded = self.net.decode_training(features, (rgb.shape[-2], rgb.shape[-1]))
        sums = self.criterion.task_losses(decoded.outputs, batch)
        means = {task: value.mean() for task, value in sums.items()}
        loss = self.criterion.combine(means)
        if decoded.auxiliary:
            auxiliary = self.criterion.auxiliary_losses(decoded, batch)
            loss = loss + self.criterion.combine_auxiliary(decoded, auxiliary)
            sums |= auxiliary
        if self.weak is not None:
            with self.autocast():
                weak_sums = self.weak(self.net, features, batch)
            loss = loss + self.weak.combine(weak_sums)
            sums |= weak_sums
        return loss, sums


def check_finite(sums: Mapping[str, Any], step: int, epoch: int, run: ModelRun) -> None:
    """Stop with a clear error when a task's loss is NaN or infinite."""
    for task, value in sums.items():
        loss = float(value.mean().detach())
        if not math.isfinite(loss):
            raise TrainingError(
                f"model {run.variant}/{run.name}: loss of task {task!r} is {loss} at step {step} "
                f"(epoch {epoch + 1}); lower train_mt.lr or check the {task} labels in the train shards"
            )


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
    with runtime_session(params.runtime.device, params.runtime.threads) as runtime:
        return {
            variant: {
                run.name: train_model(
                    params, run, runtime, progress=progress, max_epochs=max_epochs, keys_log=keys_log
                )
                for run in model_runs(params, variant)
            }
            for variant in variants
        }


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
    loop = MultiTaskLoop(
        params, run, runtime, progress=progress, keys_log=keys_log
    )  # first: bad input fails before any file changes
    spec = RunSpec(
        name=f"train_mt {run.variant}/{run.name}",
        folder=run.folder,
        units=params.train_mt.epochs,
        unit="epoch",
        fingerprint=run_fingerprint(params, run),
        history_csv=run.history_csv,
        keep_resume_state=params.runtime.keep_resume_state,
    )
    return Engine(spec, runtime, progress=progress).train(loop, max_units=max_epochs)


class MultiTaskLoop:
    """One model of ``train_mt`` as an engine loop: a unit is an epoch (train, validate, schedule)."""

    def __init__(
        self,
        params: Params,
        run: ModelRun,
        runtime: Runtime,
        *,
        progress: bool = True,
        keys_log: str | Path | None = None,
    ) -> None:
        cfg = params.train_mt
        self.params, self.run, self.runtime = params, run, runtime
        self.progress, self.keys_log = progress, keys_log
        device = runtime.device
        shards = Path(params.shard.out)
        summary = read_summary(shards)
        require_tasks(summary, shards, run.tasks)
        self.num_classes = len(summary["class_names"])
        train_samples = int(summary["splits"].get("train", {}).get("samples", 0))
        require_batches(train_samples, cfg.batch_size, f"the train split of {shards}", "train_mt.batch_size")
        self.train_set = _train_set(params, run)
        val_set = ShardDataset(shards, "val", dense=run.tasks)

        seed_everything(cfg.seed)
        self.channels_last = device_flag(params.runtime.channels_last, device, "channels_last")
        self.bf16 = device_flag(params.runtime.bf16, device, "bf16")
        self.net = build_model(params, run.tasks, self.num_classes).to(device)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.criterion = build_loss(params, run.tasks).to(device)
        self.weak: WeakLosses | None = None  # ratio 0 builds nothing more: the run is mt's, step for step
        if isinstance(self.train_set, MixedShardDataset) and self.train_set.weak_count:
            resolution = shard_resolution(summary, shards)
            self.weak = build_weak_losses(
                params, self.net, run.tasks, self.num_classes, summary["scene_names"], resolution, device
            )
        self.extra: dict[str, nn.Module] = {}
        if self.weak is not None and self.weak.ssl_head is not None:
            self.extra["ssl_head"] = self.weak.ssl_head
        if self.weak is not None and self.weak.trains_refinement:
            assert self.weak.refinement is not None
            self.extra["refinement"] = self.weak.refinement  # steps 2 and 5: trained on labelled rows only
        trained = [*self.net.parameters(), *self.criterion.parameters()]
        extra_params = [p for module in self.extra.values() for p in module.parameters()]
        self.optimizer = build_optimizer(params, [*trained, *extra_params])
        self.scheduler = build_scheduler(params, self.optimizer)
        self.step = 0
        self.loss_names = [
            *run.tasks,
            *self.net.auxiliary_names,
            *(self.weak.names if self.weak is not None else []),
        ]

        trainable: nn.Module = _Trainable(
            self.net, self.criterion, autocast_factory(device, self.bf16), self.weak
        )
        if runtime.distributed:
            trainable = DistributedDataParallel(
                trainable,
                device_ids=[device] if device.type == "cuda" else None,
                find_unused_parameters=self.weak
                is not None,  # a batch without weak samples leaves the head idle
            )
        self.trainable = trainable
        train_shards = (
            self.train_set.labelled if isinstance(self.train_set, MixedShardDataset) else self.train_set
        )
        workers = {}
        for name, dataset in (("train", train_shards), ("val", val_set)):
            workers[name] = loader_workers(
                params.runtime.workers, device, len(dataset.shards), runtime.world_size
            )
            dataset.check_readers(workers[name])
        self.train_loader = _loader(self.train_set, cfg.batch_size, workers["train"], device, drop_last=True)
        self.val_loader = _loader(val_set, cfg.batch_size, workers["val"], device)
        self._val: dict[str, Any] = {}
        self._epoch = 0
        self._score = math.inf

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "loss": self.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "tasks": list(self.run.tasks),
            "num_classes": self.num_classes,
            "model_config": model_config(self.params),
            "step": self.step,
            **{name: module.state_dict() for name, module in self.extra.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        load_state_strict(self.net, state["model"], where)
        load_state_strict(self.criterion, state["loss"], where)
        for name, module in self.extra.items():
            load_state_strict(module, state[name], f"{where} ({name})")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"{where}: optimizer/scheduler state does not match: {err}") from err
        self.step = int(state["step"])

    def train_unit(self, unit: int) -> UnitResult:
        run = self.run
        self.train_set.set_epoch(unit)
        keys: list[str] = []
        train_losses = self._train_epoch(unit, keys)
        val = evaluate_outputs(
            self.net, self.val_loader, run.tasks, self.num_classes, self.runtime.device,
            normal_kind=self.params.loss.normal, channels_last=self.channels_last, bf16=self.bf16,
        )  # fmt: skip
        if self.scheduler is not None:
            self.scheduler.step()
        score = selection_score(val, self.params.loss.weights)
        row: dict[str, Any] = {
            "epoch": unit + 1,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        row |= {f"train_{task}_loss": value for task, value in train_losses.items()}
        row |= {
            f"val_{task}_{name}": value for task, metrics in val.items() for name, value in metrics.items()
        }
        row["val_score"] = score
        self._val, self._epoch, self._score = val, unit + 1, score
        if self.keys_log is not None:
            _write_keys(self.keys_log, run, unit, self.runtime.rank, keys)
        return UnitResult(row=row, score=score)

    def _train_epoch(self, epoch: int, keys: list[str]) -> dict[str, float]:
        trainable, runtime = self.trainable, self.runtime
        trainable.train()
        meters = {name: LossMeter() for name in self.loss_names}
        bar = progress_bar(
            self.train_loader, desc=f"{self.run.variant}/{self.run.name} epoch {epoch + 1}", unit="batch",
            leave=False, disable=not (self.progress and runtime.is_main),
            total=epoch_batches(self.train_set, self.params.train_mt.batch_size, runtime.world_size),
        )  # fmt: skip
        join = Join([trainable]) if isinstance(trainable, DistributedDataParallel) else nullcontext()
        batches = 0
        with join:
            for batch in bar:
                keys += batch["key"]
                batch = to_device(batch, runtime.device, self.channels_last)
                loss, sums = trainable(batch)
                check_finite(sums, self.step, epoch, self.run)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.step += 1
                batches += 1
                for task, value in sums.items():
                    meters[task].update(value.total, value.count)
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if not batches and not runtime.distributed:
            raise TrainingError(
                f"train_mt {self.run.variant}/{self.run.name}: epoch {epoch + 1} had no batch to train on: "
                f"each loader worker's share of the train split of {self.params.shard.out} is smaller "
                f"than train_mt.batch_size ({self.params.train_mt.batch_size}); lower train_mt.batch_size "
                "or runtime.workers, or shard more training images"
            )
        for meter in meters.values():
            meter.all_reduce()
        return {task: meter.compute()["loss"] for task, meter in meters.items()}

    def best_state(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "tasks": list(self.run.tasks),
            "num_classes": self.num_classes,
            "model_config": model_config(self.params),
            "epoch": self._epoch,
            "val": self._val,
            "val_score": self._score,
        }

    def finish(self, state: EngineState) -> None:
        """Nothing beyond the engine's files."""

    def summary(self, state: EngineState) -> dict[str, Any]:
        history = public_history(state)
        best = state.best_row()
        return {
            "tasks": list(self.run.tasks),
            "epochs_done": state.units_done,
            "epochs": self.params.train_mt.epochs,
            "steps": self.step,
            "best_epoch": state.best_unit,
            "best_val_score": state.best_score if math.isfinite(state.best_score) else None,
            "best_val": {k[4:]: v for k, v in best.items() if k.startswith("val_")},
            "last_train_loss": {
                k[6:-5]: v for k, v in (history[-1] if history else {}).items() if k.startswith("train_")
            },
        }


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


def _train_set(params: Params, run: ModelRun) -> ShardDataset | MixedShardDataset:
    """The labelled train split, mixed with the weak set for ``mgm-shards``."""
    cfg, shards = params.train_mt, Path(params.shard.out)
    if run.variant != MIXED_VARIANT:
        return ShardDataset(shards, "train", shuffle=True, seed=cfg.seed, dense=run.tasks)
    weak_folder, weak_split = weak_set(params)
    return MixedShardDataset(
        shards, weak_folder, weak_split, params.mix.synthetic_ratio, shuffle=True, seed=cfg.seed
    )


def _write_keys(folder: str | Path, run: ModelRun, epoch: int, rank: int, keys: Sequence[str]) -> None:
    path = Path(folder) / f"{run.variant}-{run.name}-epoch{epoch + 1}-rank{rank}.txt"
    write_bytes_atomic(path, ("\n".join(keys) + "\n").encode())
