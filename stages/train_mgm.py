"""DVC stage ``train_mgm``: the joint MGM loop (six steps per labelled batch) from a GAN checkpoint."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.config import Params
from pipeline.train.history import write_metrics_json
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["train_mgm"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        default="metrics/detail/train_mgm.json",
        metavar="FILE",
        help="final summary: best epoch, val metrics, step losses (the test headline is evaluate's)",
    )
    parser.add_argument(
        "--max-epochs", type=int, metavar="N", help="stop after N completed epochs (resume later)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    from pipeline.train.mgm import train_mgm

    summary = train_mgm(params, progress=not args.quiet, max_epochs=args.max_epochs)
    if summary["epochs_done"] >= summary["epochs"]:
        write_metrics_json(summary, args.metrics)
    best = summary["best_val_score"]
    print(
        f"train_mgm: {summary['epochs_done']}/{summary['epochs']} epochs, "
        f"steps {', '.join(summary['steps_run'])}; "
        f"best epoch {summary['best_epoch']} (val score {best if best is None else round(best, 4)}) "
        f"-> {params.mgm.out}"
    )


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.train_mgm") -> int:
    return run_stage(
        build_parser(prog, DESCRIPTION, add_arguments, ("mgm", "model", "loss", "ssl", "runtime")), run, argv
    )


if __name__ == "__main__":
    sys.exit(main())
