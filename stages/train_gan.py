"""DVC stage ``train_gan``: conditional SAGAN pre-training on the real training shards."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.config import Params
from pipeline.train.gan.loop import train_gan
from pipeline.train.history import write_metrics_json
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["train_gan"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics", default="metrics/train_gan.json", metavar="FILE", help="final metrics for `dvc metrics`"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    metrics = train_gan(params, progress=not args.quiet)
    write_metrics_json(metrics, args.metrics)
    best = metrics["best"]
    shown = ", ".join(f"{key} {value:.4g}" for key, value in best.items() if key.startswith(("fid", "fd_")))
    print(
        f"trained {metrics['steps']} steps -> {params.gan.out}/last.pt; "
        f"best.pt at step {best.get('step')}: {shown}"
    )


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.train_gan") -> int:
    return run_stage(build_parser(prog, DESCRIPTION, add_arguments), run, argv)


if __name__ == "__main__":
    sys.exit(main())
