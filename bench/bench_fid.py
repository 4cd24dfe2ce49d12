"""FID cost on CPU with the Inception extractor: seconds per 1,000 images, measured on fewer.

    python -m bench.bench_fid --count 100 --resolution 64

Featurising (clean-fid's PIL-bicubic resize to 299 px plus Inception-v3) is timed on ``--count``
real images and scaled linearly to 1,000; the Fréchet distance (one 2048 x 2048 matrix square
root) and KID are timed once, as they do not grow with the image count. The resize share is
reported on its own.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from bench._common import report, timed
from pipeline.config import load_params
from pipeline.data.sharding import shard_dataset
from pipeline.metrics.fid import (
    frechet_distance,
    image_features,
    inception_extractor,
    kernel_distance,
    read_shard_images,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        params = load_params(
            None,
            [
                f"data.resolution={args.resolution}",
                f"data.rooms.train={args.count}",
                f"data.rooms.val={args.count}",
                "data.rooms.test=2",
                "shard.workers=0",
                f"shard.out={Path(tmp) / 'real'}",
            ],
        )
        shard_dataset(params, progress=False)
        train, _ = read_shard_images(params.shard.out, "train")
        val, _ = read_shard_images(params.shard.out, "val")
    extractor = inception_extractor(args.device)
    image_features(train[: args.batch], extractor, args.batch)  # warm-up: load weights, first pass
    resize = extractor.resizer()
    resize_s, _ = timed(lambda: [resize(image) for image in train])
    features_s, features_a = timed(lambda: image_features(train, extractor, args.batch))
    features_b = image_features(val, extractor, args.batch)
    fd_s, fid = timed(lambda: frechet_distance(features_a, features_b))
    kd_s, kid = timed(lambda: kernel_distance(features_a, features_b))
    per_1000 = features_s / args.count * 1000
    report(
        "FID (Inception) cost",
        {
            "device": args.device,
            "torch_threads": torch.get_num_threads(),
            "measured_images": args.count,
            "resolution": args.resolution,
            "features_images_per_s": round(args.count / features_s, 2),
            "resize_share_of_features": round(resize_s / features_s, 3),
            "frechet_distance_s": round(fd_s, 2),
            "kid_s": round(kd_s, 2),
            "seconds_per_1000_images_scaled": round(per_1000, 1),
            "fid_1000_vs_cached_reference_s": round(per_1000 + fd_s + kd_s, 1),
            "fid_train_vs_val_at_this_count": round(fid, 2),
            "kid_train_vs_val_at_this_count": round(kid, 5),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
