"""DVC stage ``evaluate``: test-split metrics per variant, prediction grids, a report with Δm."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import Params
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["evaluate"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-dir", default="metrics", metavar="DIR", help="where <variant>.json go")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    from pipeline.evaluation import evaluate
    from pipeline.tasks.registry import TASKS

    results = evaluate(params, progress=not args.quiet, metrics_dir=args.metrics_dir)
    for name, value in results.items():
        parts = [
            f"{task} {TASKS[task].primary_metric} {value[task][TASKS[task].primary_metric]:.4g}"
            for task in params.model.tasks
        ]
        delta = f", Δm {100 * value['delta_m']:+.2f}%" if "delta_m" in value else ""
        print(f"{name}: " + ", ".join(parts) + delta)
    print(f"wrote {Path(params.evaluate.out) / 'evaluation.md'}")


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.evaluate") -> int:
    return run_stage(build_parser(prog, DESCRIPTION, add_arguments), run, argv)


if __name__ == "__main__":
    sys.exit(main())
