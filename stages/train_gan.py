"""DVC stage ``train_gan``: conditional SAGAN pre-training on the real training shards."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.config import Params
from pipeline.metrics.fid import metric_names
from pipeline.train.gan.loop import train_gan
from pipeline.train.history import write_metrics_json
from stages import COMMANDS
from stages._common import build_parser, run_stage

DESCRIPTION = COMMANDS["train_gan"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics",
        default="metrics/train_gan.json",
        metavar="FILE",
        help="the final EMA G's KID/FID/scene accuracy and the real rungs, for `dvc metrics show`",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(params: Params, args: argparse.Namespace) -> None:
    metrics = train_gan(params, progress=not args.quiet)
    fd_name, kd_name = metric_names(metrics["extractor"])
    headline = [fd_name, kd_name, "scene_acc", "n_images"]
    headline += [f"{rung}_{name}" for rung in ("floor", "blur_half") for name in (fd_name, kd_name)]
    headline += ["real_scene_acc"]  # the rest (best step, kimg, seconds) is in <gan.out>/training.json
    write_metrics_json({key: metrics[key] for key in headline}, args.metrics)
    print(
        f"trained {metrics['steps']} steps ({metrics['kimg']:g} kimg) -> {params.gan.out}/last.pt; "
        f"best.pt at step {metrics['best_step']}; final EMA G at n={metrics['n_images']}: "
        f"{kd_name} {metrics[kd_name]:.4f} (floor {metrics[f'floor_{kd_name}']:.4f}, half-res blur "
        f"{metrics[f'blur_half_{kd_name}']:.4f}), {fd_name} {metrics[fd_name]:.1f} (floor "
        f"{metrics[f'floor_{fd_name}']:.1f}, blur {metrics[f'blur_half_{fd_name}']:.1f}), scene accuracy "
        f"{metrics['scene_acc']:.2f} (real images {metrics['real_scene_acc']:.2f})"
    )


def main(argv: Sequence[str] | None = None, prog: str = "python -m stages.train_gan") -> int:
    return run_stage(build_parser(prog, DESCRIPTION, add_arguments, ("gan", "runtime")), run, argv)


if __name__ == "__main__":
    sys.exit(main())
