"""Endless real (image, scene) batches for GAN training, resumable at a saved position."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import ChainDataset, DataLoader

from pipeline.checkpoint import (
    CheckpointError,
)
from pipeline.data.reader import ShardDataset, collate


class RealBatches:
    """Endless (images in [-1, 1], scene labels) batches over epochs; can skip to a saved position."""

    def __init__(self, folder: str | Path, splits: Sequence[str], batch_size: int, seed: int, workers: int):
        self.datasets = [
            ShardDataset(folder, split, shuffle=True, seed=seed, rgb_range="pm1", dense=())
            for split in splits
        ]
        self.batch_size = batch_size
        self.seed = seed
        self.workers = workers
        for dataset in self.datasets:
            dataset.check_readers(workers)
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
