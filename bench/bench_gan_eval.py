"""What one ``train_gan`` evaluation costs at n = 500: generating the images, their Inception
features, then FID (the n x n route), KID and the scene probe against cached reference features.

Builds the default generator (untrained: the cost does not depend on the weights), loads the
real reference of the shard set from ``--cache`` (computing it first if the cache has no entry:
then ``reference_computed_seconds`` is that cost) and times each part of one evaluation.

    python bench/bench_gan_eval.py --shards data/shards/real
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import report, timed
from pipeline.config import load_params
from pipeline.data.reader import read_summary, shard_resolution
from pipeline.generators import allocate_labels, fixed_latents, generate, real_label_counts, sagan_config
from pipeline.metrics.fid import frechet_distance, image_features, inception_extractor, kernel_distance
from pipeline.metrics.reference import load_real_reference
from pipeline.models.sagan import Generator


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="data/shards/real")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--cache", default=None, help="feature cache folder (default: a temporary one)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    params = load_params("params.yaml", [f"shard.out={args.shards}"])
    summary = read_summary(args.shards)
    config = sagan_config(params, len(summary["scene_names"]), shard_resolution(summary, args.shards))
    extractor = inception_extractor()
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache or scratch
        load = lambda: load_real_reference(  # noqa: E731
            args.shards, "reference", "train", args.images, extractor, cache
        )
        computed_seconds, reference = timed(load)
        cached_seconds, _ = timed(load)
    torch.manual_seed(0)
    generator = Generator(config).eval()
    labels = torch.from_numpy(allocate_labels(real_label_counts(args.shards), args.images, 0))
    latents = fixed_latents(args.images, config.latent_dim, 1)
    generate_seconds, images = timed(lambda: generate(generator, latents, labels, 64, torch.device("cpu")))
    features_seconds, features = timed(lambda: image_features(images, extractor))
    fid_seconds, _ = timed(lambda: frechet_distance(features, reference.reference))
    kid_seconds, _ = timed(lambda: kernel_distance(features, reference.reference))
    probe = reference.probe(len(summary["scene_names"]))
    probe_seconds, _ = timed(lambda: probe.accuracy(features, labels.numpy()))
    total = generate_seconds + features_seconds + fid_seconds + kid_seconds + probe_seconds
    report(
        "gan_eval",
        {
            "n_images": args.images,
            "evaluation_seconds": round(total, 2),
            "generate_seconds": round(generate_seconds, 2),
            "features_seconds": round(features_seconds, 2),
            "fid_seconds": round(fid_seconds, 3),
            "kid_seconds": round(kid_seconds, 3),
            "probe_seconds": round(probe_seconds, 4),
            "reference_computed_seconds": round(computed_seconds, 1),
            "reference_cached_seconds": round(cached_seconds, 3),
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
