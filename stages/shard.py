"""DVC stage ``shard``: write the real shard set (train/weak/val/test), manifest and summary."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.atomic import write_json_atomic
from pipeline.config import Params
from pipeline.data.sharding import shard_dataset, summary_metrics
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["shard"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="replace an output folder this stage did not write"
    )
    parser.add_argument(
        "--metrics",
        default="metrics/detail/shard.json",
        metavar="FILE",
        help="samples, scenes and pixel frequencies per split (also in <shard.out>/summary.json)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    summary = shard_dataset(params, force=args.force, progress=not args.quiet)
    write_json_atomic(args.metrics, summary_metrics(summary))
    counts = ", ".join(f"{split} {info['samples']}" for split, info in summary["splits"].items())
    print(f"wrote {Path(params.shard.out)}: {counts}")


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.shard") -> int:
    return run_stage(build_parser(prog, DESCRIPTION, add_arguments, ("data", "shard")), run, argv)


if __name__ == "__main__":
    sys.exit(main())
