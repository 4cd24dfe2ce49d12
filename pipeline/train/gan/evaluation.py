"""What ``train_gan`` measures of its EMA generator, and the curve it draws.

Every evaluation draws the same ``n`` latents and labels (labels in the real training
distribution), so successive rows differ only through G. Each row holds the Fréchet and kernel
distances to the real reference split and the scene probe's accuracy on the generated images;
the real side (floor, blur rung, probe accuracy on real images) is computed once
(:mod:`pipeline.metrics.reference`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.atomic import write_bytes_atomic
from pipeline.generators import allocate_labels, fixed_latents, generate
from pipeline.metrics.fid import Extractor, distances, image_features
from pipeline.metrics.reference import RealReference
from pipeline.models.sagan import Generator


class GanEvaluator:
    """Distances and scene accuracy of a generator's images against a :class:`RealReference`."""

    def __init__(
        self,
        real: RealReference,
        extractor: Extractor,
        label_weights: Sequence[float],
        latent_dim: int,
        seed: int,
    ) -> None:
        count = len(real.reference)
        num_classes = len(label_weights)
        self.real = real
        self.extractor = extractor
        self.fd_name, self.kd_name = extractor.distance_names
        self.probe = real.probe(num_classes)
        self.rungs = real.rungs(self.probe)
        self.labels = torch.from_numpy(allocate_labels(label_weights, count, seed))
        self.latents = fixed_latents(count, latent_dim, seed + 1)

    def evaluate(self, generator: Generator, batch_size: int, device: torch.device) -> dict[str, float]:
        """``{<fd>: .., <kd>: .., "scene_acc": ..}`` of ``generator`` (sampled in eval mode)."""
        images = generate(generator, self.latents, self.labels, batch_size, device)
        features = image_features(images, self.extractor)
        row = distances(features, self.real.reference, self.extractor.name)
        row["scene_acc"] = self.probe.accuracy(features, self.labels.numpy())
        return row


def plot_metrics(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], rungs: Mapping[str, Any], path: Path
) -> Path:
    """PNG of KID, FID and scene accuracy against kimg for each named run (history rows), each
    panel with its real-image lines: floor and half-resolution blur, or the probe on real images."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    first = next(iter(runs.values()))[0]
    names = [key for key in first if key.startswith(("kid", "kd_", "fid", "fd_"))]
    names = [*sorted(names, key=lambda key: not key.startswith(("kid", "kd_"))), "scene_acc"]
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), dpi=100)
    for axis, name in zip(axes, names):
        for label, rows in runs.items():
            axis.plot(
                [r["kimg"] for r in rows], [r[name] for r in rows], marker="o", markersize=3, label=label
            )
        if name == "scene_acc":
            axis.axhline(rungs["real_scene_acc"], color="grey", linestyle="--", label="real images")
        else:
            axis.axhline(rungs[f"floor_{name}"], color="grey", linestyle="--", label="floor (real vs real)")
            axis.axhline(
                rungs[f"blur_half_{name}"], color="tab:orange", linestyle=":", label="real, half-res blur"
            )
        axis.set_xlabel("kimg (thousand real images shown to D)")
        axis.set_title(f"{name} (n = {rungs['n_images']})", fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return write_bytes_atomic(path, buffer.getvalue())
