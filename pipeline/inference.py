"""Running a trained network over shards: batches to the device, dense metrics over a loader, fixed
samples. Shared by the training loops (validation) and the ``evaluate`` stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from pipeline.data.reader import ShardDataset, collate
from pipeline.metrics.dense import LossMeter
from pipeline.progress import progress_bar
from pipeline.tasks.registry import TASKS

Predictor = Callable[[Tensor], Mapping[str, Tensor]]


def to_device(batch: Mapping[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    """Move the tensors of a batch to ``device`` (the RGB input in channels-last when asked)."""
    moved = {
        name: value.to(device, non_blocking=True) if isinstance(value, Tensor) else value
        for name, value in batch.items()
    }
    if channels_last:
        moved["rgb"] = moved["rgb"].contiguous(memory_format=torch.channels_last)
    return moved


@torch.no_grad()
def evaluate_outputs(
    predictor: nn.Module | Predictor,
    loader: DataLoader,
    tasks: Sequence[str],
    num_classes: int,
    device: torch.device,
    *,
    normal_kind: str = "l1",
    channels_last: bool = False,
    bf16: bool = False,
    progress: bool = False,
    desc: str = "evaluate",
) -> dict[str, dict[str, float]]:
    """Metrics and mean loss per task over everything ``loader`` yields (summed over DDP ranks).

    ``predictor`` maps an RGB batch to ``{task: output}`` like :class:`MultiTaskNet`.
    """
    was_training = isinstance(predictor, nn.Module) and predictor.training
    if isinstance(predictor, nn.Module):
        predictor.eval()
    meters = {task: TASKS[task].meter(num_classes) for task in tasks}
    losses = {task: LossMeter() for task in tasks}
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    bar = progress_bar(
        loader, desc=desc, unit="batch", leave=False, disable=not progress, total=_batches(loader)
    )
    for batch in bar:
        batch = to_device(batch, device, channels_last)
        with autocast:
            outputs = predictor(batch["rgb"])
        for task in tasks:
            spec = TASKS[task]
            output = outputs[task].float()
            meters[task].update(spec.predict(output), batch[spec.target])
            total, count = spec.loss(output, batch, normal_kind)
            losses[task].update(total, count)
    if was_training:
        predictor.train()
    results = {}
    for task in tasks:
        meters[task].all_reduce()
        losses[task].all_reduce()
        results[task] = {**meters[task].compute(), **losses[task].compute()}
    return results


def fixed_samples(folder: str | Path, split: str, count: int) -> dict[str, Any]:
    """The first ``count`` samples of ``split`` in shard order (the same every run), collated."""
    items = []
    for item in ShardDataset(folder, split):
        items.append(item)
        if len(items) == count:
            break
    return collate(items)


def _batches(loader: Any) -> int | None:
    """Batches ``loader`` yields, from its dataset's manifest counts when it has them (a bar's total;
    the last batch may be partial), else ``None``."""
    dataset, batch_size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)
    samples = dataset.samples_per_epoch() if hasattr(dataset, "samples_per_epoch") else None
    return None if samples is None or not batch_size else -(-samples // batch_size)
