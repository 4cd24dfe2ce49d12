"""What an FID value means at a small count: FID and KID of degraded real images against real ones.

    python -m bench.fid_calibration --shards data/shards/real --count 100

Takes ``--count`` real ``train`` images, degrades them in known ways (down-sampled to a lower side
and up-sampled back, Gaussian pixel noise, grey scale) and measures each copy against ``--count``
real ``test`` images with the same Inception features ``train_gan`` uses. The untouched copy is the
real-vs-real floor at that count; the blurred copies show how much of the distance is fine detail,
which is where a GAN early in training falls short.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from bench._common import report
from pipeline.metrics.fid import (
    frechet_distance,
    image_features,
    inception_extractor,
    kernel_distance,
    read_shard_images,
)


def resampled(images: np.ndarray, side: int) -> np.ndarray:
    """Each image down-sampled to ``side`` px and back to its own size (bilinear both ways)."""
    size = images.shape[1:3][::-1]
    small = [Image.fromarray(image).resize((side, side), Image.BILINEAR) for image in images]
    return np.stack([np.asarray(image.resize(size, Image.BILINEAR)) for image in small])


def noisy(images: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    """Gaussian pixel noise of ``std`` grey levels, clipped to 0..255."""
    noise = np.random.default_rng(seed).normal(0.0, std, images.shape)
    return np.clip(images.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)


def grey(images: np.ndarray) -> np.ndarray:
    """Luma replicated to three channels."""
    luma = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(luma.round().astype(np.uint8)[..., None], 3, axis=-1)


def degradations(resolution: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> transform, mildest first within each kind."""
    table: dict[str, Callable[[np.ndarray], np.ndarray]] = {"real (the floor)": lambda x: x}
    for side in (resolution // 2, resolution // 4, resolution // 8):
        table[f"blurred: down to {side} px and back"] = lambda x, side=side: resampled(x, side)
    for std in (10.0, 25.0):
        table[f"pixel noise, std {std:g}"] = lambda x, std=std: noisy(x, std)
    table["grey scale"] = grey
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="data/shards/real")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    extractor = inception_extractor("cpu")
    real, _ = read_shard_images(args.shards, "train", limit=args.count)
    test, _ = read_shard_images(args.shards, "test", limit=args.count)
    reference = image_features(test, extractor)
    rows = {}
    for name, transform in degradations(real.shape[1]).items():
        features = image_features(transform(real), extractor)
        rows[name] = {
            "fid": round(frechet_distance(features, reference), 1),
            "kid": round(kernel_distance(features, reference), 4),
        }
    report("fid_calibration", {"count": args.count, "against": "test", "rows": rows}, args.out)


if __name__ == "__main__":
    main()
