"""The paper's comparison at small scale: ST, MT and the MGM variants per label fraction and seed.

Each (label fraction, seed) trains, in its own folder under ``--work``:

* ``st`` and ``mt`` (``train_mt``),
* ``mgm-nogen``: the joint loop without a generator (steps 1-3: dense, R on real, SSL on real),
* ``mgm-sagan``: synthetic images from the pre-trained SAGAN only (G frozen, no step 4),
* ``mgm``: the full joint loop (six steps),
* ``mgm-realweak``: weakly labelled *real* images from the ``weak`` split instead (upper bound),

then evaluates all of them on the test split with the ``evaluate`` stage's code. The pre-trained
SAGAN (``--gan``, a ``train_gan`` checkpoint; the default pipeline's ``models/gan/best.pt``) is
shared: it was trained on every training image with its scene label, which is what the weak split
keeps. ``--ratios`` adds the ``mix.synthetic_ratio`` sweep: the full MGM generator of the first
fraction and seed synthesizes a set, and ``train_mt@mgm-shards`` trains at each ratio.

``--variants`` may also name the ablations of full MGM (``mgm-nossl``: no SSL, steps 3 and 6;
``mgm-nor``: no R, steps 2 and 5; ``mgm-noganenc``: step 4's gradient kept out of the encoder),
each measured against ``mt`` of the same fraction and seed.

Finished runs are skipped (an interrupted comparison continues where it stopped; ``--variants``
trains a subset now and the rest later). Results:
``<work>/results.csv`` (one row per run), ``--out`` (markdown: mean ± std and Δm against ST) and,
with ``--ratios``, ``<plot>`` (the three task metrics against the ratio).

    python bench/mgm_comparison.py --gan models/gan/best.pt --fractions 0.25 0.5 --seeds 0 1 2 \\
        --ratios 0 0.25 0.5 1.0 1.25 --out docs/mgm_comparison.md --plot docs/mgm_ratio.png
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import Params, load_params
from pipeline.evaluation import DELTA_VARIANTS, evaluate
from pipeline.tasks.registry import TASKS

VARIANTS: dict[str, list[str]] = {
    "mgm-nogen": ["mgm.weak=none"],
    "mgm-sagan": ["mgm.joint=false"],
    "mgm": [],
    "mgm-realweak": ["mgm.weak=real"],
}
"""train_mgm variants -> their params overrides."""
ORDER = ["st", "mt", *VARIANTS]
"""The comparison's variants (the default ``--variants``)."""
ABLATIONS: dict[str, list[str]] = {
    "mgm-nossl": ["mgm.ssl=none"],
    "mgm-nor": ["mgm.refinement=false"],
    "mgm-noganenc": ["mgm.gan_encoder=false"],
}
"""Full MGM with one auxiliary part removed (issue 13's ablation: ``--variants mt mgm mgm-nossl ...``)."""
VARIANTS |= ABLATIONS
ALL = [*ORDER, *ABLATIONS]
TITLES = {
    "st": "single-task (ST)",
    "mt": "multi-task (MT)",
    "mgm-nogen": "MGM without generator",
    "mgm-sagan": "MGM, pre-trained SAGAN only",
    "mgm": "MGM (full)",
    "mgm-realweak": "MGM, weakly labelled real (upper bound)",
    "mgm-nossl": "MGM without SSL (steps 3, 6)",
    "mgm-nor": "MGM without R (steps 2, 5)",
    "mgm-noganenc": "MGM, no GAN gradient into the encoder",
}


def run_params(base: Sequence[str], folder: Path, fraction: float, seed: int, extra: Sequence[str]) -> Params:
    """Params of one run: shards, outputs and seeds under ``folder``."""
    shards = folder.parent / "shards"
    settings = [
        f"data.label_fraction={fraction}",
        f"shard.out={shards}",
        f"train_mt.out={folder}/mt-models",
        f"train_mt.plots={folder}/plots/train_mt",
        f"train_mt.seed={seed}",
        f"mgm.seed={seed}",
        f"mgm.out={folder}/models/mgm",
        f"mgm.plots={folder}/plots/mgm",
        f"evaluate.out={folder}/reports",
    ]
    return load_params("params.yaml", [*settings, *base, *extra])


def shard_once(params: Params) -> None:
    from pipeline.data.sharding import shard_dataset

    if not (Path(params.shard.out) / "summary.json").is_file():
        shard_dataset(params, progress=False)


def finished(params: Params, variant: str, folder: Path) -> bool:
    """The variant's runs wrote their completion marker (then they are not touched again, even when
    the training code changed since: the comparison keeps the models it measured)."""
    from pipeline.train.builders import model_runs
    from pipeline.train.engine import COMPLETE_MARKER

    if variant in ("st", "mt"):
        return all((run.folder / COMPLETE_MARKER).is_file() for run in model_runs(params, variant))
    return (folder / "models" / variant / COMPLETE_MARKER).is_file()


def train_variant(params: Params, variant: str, folder: Path) -> str | None:
    """Train one variant unless finished; return the checkpoint to evaluate for train_mgm variants."""
    from pipeline.train.multitask import train_variants

    out = folder / "models" / variant
    if finished(params, variant, folder):
        return None if variant in ("st", "mt") else str(out / "best.pt")
    if variant in ("st", "mt"):
        train_variants(params, [variant], progress=False)
        return None
    from pipeline.train.mgm import train_mgm

    params = params.model_copy(update={"mgm": params.mgm.model_copy(update={"out": str(out)})})
    train_mgm(params, progress=False)
    return str(out / "best.pt")


def evaluate_run(params: Params, folder: Path, checkpoints: dict[str, str]) -> dict[str, Any]:
    trained = [variant for variant in ("st", "mt") if (folder / "mt-models" / variant).is_dir()]
    params = params.model_copy(
        update={
            "train_mt": params.train_mt.model_copy(update={"variants": trained}),
            "evaluate": params.evaluate.model_copy(update={"checkpoints": checkpoints}),
        }
    )
    return evaluate(params, progress=False, metrics_dir=folder / "metrics")


def primary(result: dict[str, Any], tasks: Sequence[str]) -> dict[str, float]:
    """One results row: each task's primary metric, normals' L1 (the paper's mAD form) and every
    Δm the evaluation computed (against ST and MT, with the angle and with the L1)."""
    values = {task: float(result[task][TASKS[task].primary_metric]) for task in tasks}
    if "normal" in tasks and "l1" in result["normal"]:
        values["normal_l1"] = float(result["normal"]["l1"])
    for key in ("delta_m", *DELTA_VARIANTS):
        if key in result:
            values[key] = float(result[key])
    return values


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or skip, when finished) and evaluate ``args.variants`` for every fraction and seed."""
    rows: list[dict[str, Any]] = []
    for fraction in args.fractions:
        for seed in args.seeds:
            folder = Path(args.work) / f"labels-{fraction:g}" / f"seed-{seed}"
            saved = folder / "results.json"
            if saved.is_file():
                found = json.loads(saved.read_text())
                if {row["variant"] for row in found} >= set(args.variants):
                    rows += found
                    continue
            base = [*args.set, f"mgm.gan_checkpoint={Path(args.gan).resolve()}"]
            params = run_params(base, folder, fraction, seed, [])
            shard_once(params)
            timings = folder / "seconds.json"
            seconds = json.loads(timings.read_text()) if timings.is_file() else {}
            checkpoints: dict[str, str] = {}
            for variant in [name for name in ALL if name in args.variants]:
                started = time.perf_counter()
                variant_params = (
                    params
                    if variant in ("st", "mt")
                    else run_params(base, folder, fraction, seed, VARIANTS[variant])
                )
                path = train_variant(variant_params, variant, folder)
                if path:
                    checkpoints[variant] = path
                if variant not in seconds:
                    seconds[variant] = round(time.perf_counter() - started, 1)
                    timings.write_text(json.dumps(seconds, indent=1))
                print(f"labels {fraction:g} seed {seed}: {variant} {seconds[variant]} s", flush=True)
            results = evaluate_run(params, folder, checkpoints)
            tasks = list(params.model.tasks)
            found = [
                {"fraction": fraction, "seed": seed, "variant": name, "seconds": seconds[name],
                 **primary(results[name], tasks)}
                for name in ALL if name in results
            ]  # fmt: skip
            if {row["variant"] for row in found} >= set(ORDER):
                saved.write_text(json.dumps(found, indent=1))
            rows += found
    return rows


def ratio_sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    """train_mt@mgm-shards at each ratio on the synthetic set of the full MGM run (first fraction, seed)."""
    from pipeline.synthesis import synthesize
    from pipeline.train.multitask import train_variants

    fraction, seed = args.fractions[0], args.seeds[0]
    folder = Path(args.work) / f"labels-{fraction:g}" / f"seed-{seed}"
    mgm = folder / "models" / "mgm"
    synthetic = folder / "synthetic"
    top = max(args.ratios)
    rows = []
    for ratio in args.ratios:
        run = folder / "ratios" / f"ratio-{ratio:g}"
        done = run / "result.json"
        if not done.is_file():
            extra = [
                f"mix.synthetic_ratio={ratio}",
                f"mix.synthetic={synthetic}/mgm",
                f"mix.refinement={mgm}/best.pt",
                f"train_mt.out={run}/mt-models",
                f"train_mt.plots={run}/plots",
                f"synthesize.checkpoint={mgm}/generator.pt",
                f"synthesize.out={synthetic}",
                "synthesize.name=mgm",
                f"synthesize.count_relative={top}",
                "synthesize.fid_split=none",
            ]
            params = run_params([*args.set, f"mgm.gan_checkpoint={Path(args.gan).resolve()}"], folder,
                                fraction, seed, extra)  # fmt: skip
            if ratio > 0 and not (synthetic / "mgm" / "provenance.json").is_file():
                synthesize(params, progress=False)
            if not (run / "mt-models" / "mgm-shards" / "training.json").is_file():
                train_variants(params, ["mgm-shards"], progress=False)
            only_mgm = params.train_mt.model_copy(update={"variants": ["mgm-shards"]})
            no_others = params.evaluate.model_copy(update={"checkpoints": {}})
            params = params.model_copy(update={"train_mt": only_mgm, "evaluate": no_others})

            result = evaluate(params, progress=False, metrics_dir=run / "metrics")["mgm-shards"]
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps({"ratio": ratio, **primary(result, list(params.model.tasks))}))
        rows.append(json.loads(done.read_text()))
        print(f"ratio {ratio:g}: {rows[-1]}", flush=True)
    return rows


def mean_std(values: Sequence[float]) -> str:
    array = np.asarray(values, dtype=float)
    std = float(array.std(ddof=1)) if len(array) > 1 else math.nan
    return f"{array.mean():.4f} ± {std:.4f}"


def markdown(rows: Sequence[dict[str, Any]], tasks: Sequence[str], seeds: Sequence[int]) -> str:
    lines = []
    for fraction in sorted({row["fraction"] for row in rows}):
        lines += [f"### {fraction:.0%} labels, {len(seeds)} seeds (mean ± std over seeds)", ""]
        header = [f"{task} {TASKS[task].primary_metric} ({'↓' if TASKS[task].lower_is_better else '↑'})"
                  for task in tasks]  # fmt: skip
        lines += ["| variant | " + " | ".join(header) + " | Δm vs ST (%, ↑) |",
                  "|---|" + "---|" * (len(tasks) + 1)]  # fmt: skip
        for variant in ALL:
            picked = [row for row in rows if row["fraction"] == fraction and row["variant"] == variant]
            if not picked:
                continue
            cells = [mean_std([row[task] for row in picked]) for task in tasks]
            delta = np.asarray([100 * row.get("delta_m", 0.0) for row in picked])
            std = f"{delta.std(ddof=1):.2f}" if len(delta) > 1 else "–"
            row = " | ".join([TITLES[variant], *cells, f"{delta.mean():+.2f} ± {std}"])
            lines.append(f"| {row} |")
        lines.append("")
    return "\n".join(lines)


def plot_ratios(rows: Sequence[dict[str, Any]], tasks: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = [row["ratio"] for row in rows]
    figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2))
    for axis, task in zip(np.atleast_1d(axes), tasks):
        spec = TASKS[task]
        axis.plot(ratios, [row[task] for row in rows], marker="o")
        axis.set_xlabel("mix.synthetic_ratio (weak per labelled)")
        axis.set_title(
            f"{task} {spec.primary_metric} ({'lower' if spec.lower_is_better else 'higher'} is better)"
        )
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gan", default="models/gan/best.pt", help="pre-trained SAGAN (train_gan checkpoint)"
    )
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=ORDER, choices=ALL, help="train these")
    parser.add_argument("--ratios", type=float, nargs="*", default=[], help="mix.synthetic_ratio sweep")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override")
    parser.add_argument("--work", default="bench/out/mgm_comparison", help="runs and their results")
    parser.add_argument("--out", default=None, help="markdown table")
    parser.add_argument("--plot", default=None, help="ratio plot PNG")
    args = parser.parse_args(argv)
    tasks = list(load_params("params.yaml", args.set).model.tasks)
    rows = compare(args)
    work = Path(args.work)
    with (work / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = markdown(rows, tasks, args.seeds)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.ratios:
        sweep = ratio_sweep(args)
        with (work / "ratios.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(sweep[0]))
            writer.writeheader()
            writer.writerows(sweep)
        if args.plot:
            plot_ratios(sweep, tasks, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
