"""Where plain multi-task training stops improving on validation: the first step of the MGM protocol.

Trains MT (``train_mt@mt``) at one label fraction for ``--epochs`` epochs per seed, with the paper's
constant learning rate (``--schedule none``; a cosine schedule would tie the curve to its length),
and reads each epoch's validation metrics from the run's history CSV. Per epoch it reports each
task's primary validation metric and their Δm (%) against the run's **final level** (each task's
mean over the last ``--tail`` epochs of that seed): 0 is where the run ends, negative is short of
it. The **plateau epoch** is the first whose seed-mean Δm, averaged over a trailing window of
``--smooth`` epochs (validation is noisy at a constant learning rate), is within ``--tolerance``
points of the final level. The comparison then trains every variant for that many epochs over the
labelled split (the same number of labelled iterations).

    python bench/mt_plateau.py --fraction 0.5 --seeds 0 1 --epochs 30 \\
        --csv docs/results/mgm/mt_plateau.csv --plot docs/mt_plateau.png

The last line is the headline JSON: ``{"plateau_epoch": ..., "labelled_iterations": ...}``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import report
from pipeline.config import Params, load_params
from pipeline.metrics.dense import delta_m
from pipeline.tasks.registry import TASKS


def seed_params(args: argparse.Namespace, seed: int) -> Params:
    work = Path(args.work)
    settings = [
        f"data.label_fraction={args.fraction}",
        f"shard.out={work / 'shards'}",
        f"train_mt.out={work}/seed-{seed}/models",
        f"train_mt.plots={work}/seed-{seed}/plots",
        f"train_mt.seed={seed}",
        f"train_mt.epochs={args.epochs}",
        f"train_mt.schedule={args.schedule}",
    ]
    return load_params("params.yaml", [*settings, *args.set])


def val_curve(history: Path, tasks: Sequence[str]) -> list[dict[str, float]]:
    """Per epoch: each task's primary validation metric (from train_mt's history CSV)."""
    rows = list(csv.DictReader(history.open()))
    if not rows:
        raise ValueError(f"{history}: no epochs recorded")
    return [
        {"epoch": int(row["epoch"]),
         **{task: float(row[f"val_{task}_{TASKS[task].primary_metric}"]) for task in tasks}}
        for row in rows
    ]  # fmt: skip


def trailing_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of each value and the ``window - 1`` before it (fewer at the start)."""
    return [float(np.mean(values[max(0, index - window + 1) : index + 1])) for index in range(len(values))]


def plateau_epoch(mean_delta: Sequence[float], tolerance: float, smooth: int = 1) -> int:
    """First epoch (1-based) whose trailing mean over ``smooth`` epochs is within ``tolerance`` of 0
    (the final level); the last epoch when none is."""
    smoothed = trailing_mean(mean_delta, smooth)
    return next((index + 1 for index, value in enumerate(smoothed) if value >= -tolerance), len(smoothed))


def curve_rows(
    curves: dict[int, list[dict[str, float]]], tasks: Sequence[str], tail: int = 5
) -> list[dict[str, Any]]:
    """One row per seed and epoch, with Δm (%) against that seed's final level (each task's mean
    over its last ``tail`` epochs)."""
    lower = {task: TASKS[task].lower_is_better for task in tasks}
    rows = []
    for seed, curve in curves.items():
        final = {task: float(np.mean([point[task] for point in curve[-tail:]])) for task in tasks}
        for point in curve:
            values = {task: point[task] for task in tasks}
            rows.append({"seed": seed, **point, "delta_m_vs_final": 100 * delta_m(values, final, lower)})
    return rows


def plot(rows: Sequence[dict[str, Any]], tasks: Sequence[str], plateau: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [*tasks, "delta_m_vs_final"]
    figure, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2))
    for axis, key in zip(np.atleast_1d(axes), keys):
        for seed in sorted({row["seed"] for row in rows}):
            picked = [row for row in rows if row["seed"] == seed]
            axis.plot([row["epoch"] for row in picked], [row[key] for row in picked], label=f"seed {seed}")
        axis.axvline(plateau, color="grey", linestyle="--", linewidth=1)
        if key == "delta_m_vs_final":
            title = "val Δm vs the final level (%)"
        else:
            better = "lower" if TASKS[key].lower_is_better else "higher"
            title = f"val {key} {TASKS[key].primary_metric} ({better} better)"
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--schedule", default="none", choices=["none", "cosine", "step"])
    parser.add_argument("--tolerance", type=float, default=2.0, help="Δm points below the final level")
    parser.add_argument("--tail", type=int, default=5, help="last epochs that give the final level")
    parser.add_argument("--smooth", type=int, default=3, help="trailing window of the plateau test")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override")
    parser.add_argument("--work", default="bench/out/mt_plateau")
    parser.add_argument("--csv", default=None)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args(argv)
    from pipeline.data.reader import read_summary
    from pipeline.data.sharding import shard_dataset
    from pipeline.train.builders import model_runs
    from pipeline.train.multitask import train_variants

    curves: dict[int, list[dict[str, float]]] = {}
    for seed in args.seeds:
        params = seed_params(args, seed)
        if not (Path(params.shard.out) / "summary.json").is_file():
            shard_dataset(params, progress=False)
        train_variants(params, ["mt"], progress=False)
        (run,) = model_runs(params, "mt")
        curves[seed] = val_curve(run.history_csv, list(params.model.tasks))
    tasks = list(params.model.tasks)
    rows = curve_rows(curves, tasks, args.tail)
    epochs = sorted({row["epoch"] for row in rows})
    mean = [float(np.mean([row["delta_m_vs_final"] for row in rows if row["epoch"] == e])) for e in epochs]
    plateau = epochs[plateau_epoch(mean, args.tolerance, args.smooth) - 1]
    labelled = int(read_summary(params.shard.out)["splits"]["train"]["samples"])
    per_epoch = labelled // params.train_mt.batch_size  # train_mt drops the last, partial batch
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        with Path(args.csv).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    if args.plot:
        plot(rows, tasks, plateau, Path(args.plot))
    report(
        "mt_plateau",
        {
            "fraction": args.fraction,
            "seeds": args.seeds,
            "epochs": args.epochs,
            "schedule": args.schedule,
            "tolerance_points": args.tolerance,
            "tail_epochs": args.tail,
            "smooth_epochs": args.smooth,
            "mean_val_delta_m_vs_final": [round(value, 2) for value in mean],
            "best_epoch": epochs[int(np.argmax(mean))],
            "plateau_epoch": plateau,
            "labelled_images": labelled,
            "labelled_iterations": plateau * per_epoch,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
