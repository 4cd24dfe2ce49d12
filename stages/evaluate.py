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
    parser.add_argument(
        "--metrics-dir", default="metrics", metavar="DIR", help="where the headline <variant>.json go"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    from pipeline.evaluation import DELTA_REFERENCES, evaluate
    from pipeline.tasks.registry import TASKS

    results = evaluate(params, progress=not args.quiet, metrics_dir=args.metrics_dir)
    for name, value in results.items():
        parts = [
            f"{task} {TASKS[task].primary_metric} {value[task][TASKS[task].primary_metric]:.4g}"
            for task in params.model.tasks
        ]
        for key, reference in DELTA_REFERENCES.items():
            if key in value and name != reference:
                parts.append(f"Δm vs {reference} {100 * value[key]:+.2f}%")
        print(f"{name}: " + ", ".join(parts))
    print(
        f"report: {Path(params.evaluate.out) / 'evaluation.md'} (grids in grids/); "
        "`dvc metrics show` prints the table"
    )


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.evaluate") -> int:
    return run_stage(
        build_parser(prog, DESCRIPTION, add_arguments, ("evaluate", "model", "loss", "runtime")), run, argv
    )


if __name__ == "__main__":
    sys.exit(main())
