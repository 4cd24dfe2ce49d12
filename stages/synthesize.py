"""DVC stage ``synthesize``: scene-labelled images from a generator checkpoint as synthetic shards."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import Params
from pipeline.metrics.fid import compare_shard_sets, make_extractor
from pipeline.runtime import select_device
from pipeline.synthesis import SPLIT, synthesize
from pipeline.train.history import write_metrics_json
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["synthesize"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a different dataset version or a folder not written here",
    )
    parser.add_argument(
        "--metrics",
        default="metrics/detail/synthesize_{name}.json",
        metavar="FILE",
        help="counts, FID/KID against synthesize.fid_split overall and per scene ({name} is "
        "synthesize.name); left out of `dvc metrics show`, whose generator headline is train_gan's",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    synth = params.synthesize
    provenance = synthesize(params, force=args.force, progress=not args.quiet)
    target = Path(synth.out) / synth.name
    metrics = {"count": provenance["count"], "count_per_scene": provenance["count_per_scene"]}
    if "guide" in provenance:  # an MGM generator: G's latent guided by real training images
        metrics["guide"] = {key: provenance["guide"][key] for key in ("mode", "distinct_images")}
    if synth.fid_split != "none":
        extractor = make_extractor(synth.fid_extractor, select_device(params.runtime.device))
        metrics[f"vs_real_{synth.fid_split}"] = compare_shard_sets(
            target,
            SPLIT,
            params.shard.out,
            synth.fid_split,
            extractor,
            provenance["scene_names"],
            progress=not args.quiet,
        )
    write_metrics_json(metrics, args.metrics.format(name=synth.name))
    guided = f", guided ({provenance['guide']['mode']})" if "guide" in provenance else ""
    print(f"wrote {target}: {provenance['count']} images{guided}, version {provenance['version']}")


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.synthesize") -> int:
    return run_stage(build_parser(prog, DESCRIPTION, add_arguments, ("synthesize", "runtime")), run, argv)


if __name__ == "__main__":
    sys.exit(main())
