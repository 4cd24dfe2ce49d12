"""``mgm preview``: a PNG grid of samples (RGB, labels, depth, normals) from the configured source."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.config import Params
from pipeline.data.sources import make_source
from pipeline.viz import sample_grid, save_image
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["preview"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/preview.png", metavar="PNG", help="output image")
    parser.add_argument("--split", default="train", choices=("train", "val", "test"))
    parser.add_argument("--count", type=int, default=8, help="number of samples (rows)")


def run(params: Params, args: argparse.Namespace) -> None:
    source = make_source(params.data, params.model.tasks)
    ids = list(source.split_ids()[args.split])[: args.count]
    samples = [source.load(item) for item in ids]
    save_image(sample_grid(samples, scene_names=source.scene_names), args.out)
    print(f"wrote {args.out} ({len(samples)} samples of {source.name}/{args.split})")


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.preview") -> int:
    return run_stage(build_parser(prog, DESCRIPTION, add_arguments, ("data",)), run, argv)


if __name__ == "__main__":
    sys.exit(main())
