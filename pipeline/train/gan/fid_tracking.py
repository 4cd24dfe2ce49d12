"""FID/KID of the EMA generator against fixed real references during training, and its curve."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.atomic import write_bytes_atomic
from pipeline.generators import (
    allocate_labels,
    fixed_latents,
    generate,
)
from pipeline.metrics.fid import (
    Extractor,
    compare_features,
    image_features,
    read_shard_images,
)
from pipeline.models.sagan import Generator


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
