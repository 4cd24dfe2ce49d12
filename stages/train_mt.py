"""DVC stage ``train_mt``: train the single-task (``st``), multi-task (``mt``) and/or ``mgm`` networks
(``mgm``: multi-task on real shards mixed with weakly labelled ones at ``mix.synthetic_ratio``).

Runs the same under ``torchrun --nproc_per_node=N -m stages.train_mt`` (DDP, shards split by rank).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.config import Params
from pipeline.train.history import write_metrics_json
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["train_mt"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variant",
        choices=["st", "mt", "mgm-shards"],
        help="train this variant only (default: every train_mt.variants)",
    )
    parser.add_argument(
        "--metrics", default="metrics/detail/train_mt_{variant}.json", metavar="FILE",
        help="final summary: best epoch, val metrics, train losses ({variant} is replaced); "
        "the test headline `dvc metrics show` prints is evaluate's",
    )  # fmt: skip
    parser.add_argument(
        "--max-epochs", type=int, metavar="N", help="stop after N completed epochs (resume later)"
    )
    parser.add_argument(
        "--keys-log", metavar="DIR", help="write the sample keys each rank trained on, per epoch, to DIR"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    from pipeline.data.reader import distributed_rank_and_world
    from pipeline.train.multitask import train_variants

    variants = [args.variant] if args.variant else list(params.train_mt.variants)
    results = train_variants(
        params, variants, progress=not args.quiet, max_epochs=args.max_epochs, keys_log=args.keys_log
    )
    if distributed_rank_and_world()[0] != 0:
        return
    for variant, summaries in results.items():
        if all(s["epochs_done"] >= s["epochs"] for s in summaries.values()):
            write_metrics_json(summaries, args.metrics.format(variant=variant))
        for name, summary in summaries.items():
            best = summary["best_val_score"]
            print(
                f"{variant}/{name}: {summary['epochs_done']}/{summary['epochs']} epochs, best epoch "
                f"{summary['best_epoch']} (val score {best if best is None else round(best, 4)})"
            )


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.train_mt") -> int:
    return run_stage(
        build_parser(
            prog, DESCRIPTION, add_arguments, ("train_mt", "model", "loss", "ssl", "mix", "runtime")
        ),
        run,
        argv,
        distributed=True,
    )


if __name__ == "__main__":
    sys.exit(main())
