"""Tables, trend statistics and a curve plot of finished ``train_gan`` runs, from their files.

Each ``--run NAME=FOLDER`` names a run and a folder holding its ``history.csv`` and
``metrics.json`` (``gan.plots`` and the stage's ``--metrics`` file, or copies of them under
docs/results/gan/). For each run it prints the per-evaluation rows (kimg, KID, FID, scene
accuracy), the Spearman rank correlation of KID with the step and the ratio last/first KID, and
the reference rungs; ``--plot`` draws every run's KID, FID and scene accuracy against kimg.

    python bench/gan_runs_report.py --run default=docs/results/gan/default --plot docs/gan_curves.png
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import report
from pipeline.train.gan.evaluation import plot_metrics


def read_run(folder: Path) -> tuple[list[dict[str, float]], dict]:
    with open(folder / "history.csv") as stream:
        rows = [
            {key: float(value) for key, value in row.items() if value != ""} for row in csv.DictReader(stream)
        ]
    return rows, json.loads((folder / "metrics.json").read_text())


def trend(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    kid = [row["kid"] for row in rows]
    rho = round(float(spearmanr([row["step"] for row in rows], kid).statistic), 3) if len(rows) > 2 else None
    return {"evaluations": len(rows), "kid_spearman_vs_step": rho,
            "kid_last_over_first": round(kid[-1] / kid[0], 3)}  # fmt: skip


def markdown(name: str, rows: Sequence[dict[str, float]], metrics: dict) -> str:
    lines = [
        f"**{name}**",
        "",
        "| step | kimg | KID | FID | scene accuracy | D loss | G loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['step']:.0f} | {row['kimg']:.1f} | {row['kid']:.4f} | {row['fid']:.1f} | "
            f"{row['scene_acc']:.3f} | {row['d_loss']:.3f} | {row['g_loss']:.3f} |"
        )
    kid = f"{metrics['floor_kid']:.4f} / {metrics['blur_half_kid']:.4f}"
    fid = f"{metrics['floor_fid']:.1f} / {metrics['blur_half_fid']:.1f}"
    probe = f"{metrics['real_scene_acc']:.3f}"
    lines.append(f"| *real: floor / half-res blur / probe* | | *{kid}* | *{fid}* | *{probe}* | | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="NAME=FOLDER")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = {}
    for item in args.run:
        name, _, folder = item.partition("=")
        runs[name] = read_run(Path(folder))
    for name, (rows, metrics) in runs.items():
        print(markdown(name, rows, metrics), end="\n\n")
    if args.plot:
        plot_metrics(
            {name: rows for name, (rows, _) in runs.items()}, next(iter(runs.values()))[1], args.plot
        )
    results = {}
    for name, (rows, metrics) in runs.items():
        final = {key: metrics[key] for key in ("kid", "fid", "scene_acc")}
        final["kimg"] = metrics.get("kimg", float(rows[-1]["kimg"]))  # metrics files since session 6: no kimg
        ratio = round(metrics["scene_acc"] / metrics["real_scene_acc"], 3)
        results[name] = {**trend(rows), **final, "scene_acc_over_real": ratio}
    first = next(iter(results.values()))  # the headline: the first run's trend and final values
    report("gan_runs", {"runs": results, "first_run": next(iter(results)), **first})
    return 0


if __name__ == "__main__":
    sys.exit(main())
