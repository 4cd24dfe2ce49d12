"""The paper's comparison on the embedded default: ST, MT and the MGM variants per label fraction and seed.

Each (label fraction, seed) trains, in its own folder under ``--work``:

* ``st`` and ``mt`` (``train_mt``),
* ``mgm-none``: the joint loop without a generator (steps 1-3: dense, R on real, SSL on real),
* ``mgm-pretrained``: synthetic images from the pre-trained SAGAN only (G frozen, no step 4),
* ``mgm``: the full joint loop (six steps), the paper's MGM and the primary result,
* ``mgm-real``: weakly labelled *real* images from the ``weak`` split instead (the upper bound),
* ``mgm-shards``: ``train_mt@mgm-shards`` at ``mix.synthetic_ratio`` 1: a fresh M on the labelled
  shards mixed with a set that the full run's generator synthesized, R and the SSL head from that
  run (needs ``mgm`` of the same fraction and seed),

then evaluates all of them on the test split with the ``evaluate`` stage's code. ``--variants`` may
also name the ablations of full MGM (``mgm-nossl``: no SSL, steps 3 and 6; ``mgm-nor``: no R, steps
2 and 5; ``mgm-noganenc``: step 4's gradient kept out of the encoder; ``mgm-bn-dense`` and
``mgm-bn-recalibrate``: the other two ``mgm.bn_mode`` values) and of the upper bound
(``mgm-real-nossl``, ``mgm-real-nor``).

The pre-trained SAGAN: ``--gan-steps N`` trains one per label fraction on that fraction's labelled
images only (the ``train`` split; ``gan.include_weak`` false), as the paper does, into
``<work>/labels-<f>/gan/`` (kept; a rerun reuses it). Or ``--gan PATH`` names a ``train_gan``
checkpoint, with ``{fraction}`` standing for the fraction (``runs/gan-{fraction}/best.pt``); a missing
one is an error naming the file. ``--test-images`` renders that many test images (rooms).

Finished runs are skipped (an interrupted comparison continues where it stopped; ``--variants``
trains a subset now and the rest later). Results: ``<work>/results.csv`` and ``--csv`` (one row per
fraction, seed and variant: each task's primary metric, normals' L1, the test image count, every Δm,
training seconds), ``--out`` (markdown: mean ± std per variant, then each variant's paired difference
against MT of the same seed, Δm and per task, with 95 % t-intervals) and, with ``--ratios``, the
``mix.synthetic_ratio`` sweep of the first fraction and seed (``<work>/ratios.csv``, ``--plot``).

    python bench/mgm_comparison.py --gan-steps 1250 --fractions 0.5 0.25 --seeds 0 1 2 3 4 \\
        --test-images 1000 --set train_mt.epochs=15 --set mgm.epochs=15 \\
        --csv docs/mgm_comparison.csv --out docs/mgm_comparison.md
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

from bench._common import t_interval
from pipeline.atomic import write_json_atomic
from pipeline.config import Params, load_params
from pipeline.errors import ParamsError
from pipeline.evaluation import DELTA_VARIANTS, evaluate
from pipeline.tasks.registry import TASKS

TRAIN_MT = ("st", "mt", "mgm-shards")
"""Variants that ``train_mt`` trains (the others are ``train_mgm`` runs)."""
VARIANTS: dict[str, list[str]] = {
    "mgm-none": ["mgm.weak=none"],
    "mgm-pretrained": ["mgm.joint=false"],
    "mgm": [],
    "mgm-real": ["mgm.weak=real"],
}
"""train_mgm variants -> their params overrides."""
ORDER = ["st", "mt", *VARIANTS, "mgm-shards"]
"""The comparison's variants (the default ``--variants``)."""
ABLATIONS: dict[str, list[str]] = {
    "mgm-nossl": ["mgm.ssl=none"],
    "mgm-nor": ["mgm.refinement=false"],
    "mgm-noganenc": ["mgm.gan_encoder=false"],
    "mgm-bn-dense": ["mgm.bn_mode=dense"],
    "mgm-bn-recalibrate": ["mgm.bn_mode=recalibrate"],
    "mgm-real-nossl": ["mgm.weak=real", "mgm.ssl=none"],
    "mgm-real-nor": ["mgm.weak=real", "mgm.refinement=false"],
}
"""Full MGM with one part removed or changed (issue 13's ablation: ``--variants mt mgm mgm-nossl ...``)."""
VARIANTS |= ABLATIONS
ALL = [*ORDER, *ABLATIONS]
TITLES = {
    "st": "single-task (ST)",
    "mt": "multi-task (MT)",
    "mgm-none": "MGM without generator (`mgm-none`)",
    "mgm-pretrained": "MGM, pre-trained SAGAN only (`mgm-pretrained`)",
    "mgm": "MGM, full (`mgm`)",
    "mgm-real": "MGM, weakly labelled real (`mgm-real`, upper bound)",
    "mgm-shards": "mixed shards at ratio 1 (`mgm-shards`)",
    "mgm-nossl": "MGM without SSL (steps 3, 6)",
    "mgm-nor": "MGM without R (steps 2, 5)",
    "mgm-noganenc": "MGM, no GAN gradient into the encoder",
    "mgm-bn-dense": "MGM, `bn_mode` dense",
    "mgm-bn-recalibrate": "MGM, `bn_mode` recalibrate",
    "mgm-real-nossl": "upper bound without SSL (steps 3, 6)",
    "mgm-real-nor": "upper bound without R (steps 2, 5)",
}
CSV_COLUMNS = ["fraction", "seed", "variant", "seg_miou", "depth_mae", "normal_mean_angle", "normal_l1",
               "test_images"]  # fmt: skip
"""The leading columns of the raw rows (issue 13); every Δm and the seconds follow."""


def fraction_folder(work: str | Path, fraction: float) -> Path:
    return Path(work) / f"labels-{fraction:g}"


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
        f"synthesize.checkpoint={folder}/models/mgm/generator.pt",
        f"synthesize.out={folder}/synthetic",
        "synthesize.name=mgm",
        "synthesize.fid_split=none",
        f"mix.synthetic={folder}/synthetic/mgm",
        f"mix.refinement={folder}/models/mgm/best.pt",
    ]
    return load_params("params.yaml", [*settings, *base, *extra])


def shard_once(params: Params) -> None:
    from pipeline.data.sharding import shard_dataset

    summary = Path(params.shard.out) / "summary.json"
    if not summary.is_file():
        shard_dataset(params, progress=False)
        return
    made_with = json.loads(summary.read_text())["params"]["data"]
    if made_with != params.data.model_dump(mode="json"):
        raise ParamsError(
            f"{params.shard.out}: these shards were made with other data params than this comparison's "
            f"(--test-images, --set data.*); use another --work or remove {params.shard.out}"
        )


def pretrained_gan(args: argparse.Namespace, fraction: float, base: Sequence[str]) -> Path:
    """The fraction's pre-trained SAGAN: trained here on its labelled images (``--gan-steps``), or
    ``--gan`` with ``{fraction}`` filled in, which must exist."""
    if args.gan_steps is None:
        try:
            path = Path(args.gan.format(fraction=f"{fraction:g}"))
        except (KeyError, IndexError, ValueError) as error:
            raise ParamsError(f"--gan: {args.gan!r} may hold {{fraction}} only ({error!r})") from None
        if not path.is_file():
            raise ParamsError(
                f"--gan: no pre-trained SAGAN for label fraction {fraction:g} at {path} (train one "
                f"with `mgm train_gan --set data.label_fraction={fraction:g}`, or pass --gan-steps N)"
            )
        return path.resolve()
    from pipeline.data.reader import read_summary
    from pipeline.train.gan.loop import train_gan

    folder = fraction_folder(args.work, fraction) / "gan"
    params = run_params(base, folder, fraction, 0, [])
    shard_once(params)
    labelled = int(read_summary(params.shard.out)["splits"]["train"]["samples"])
    settings = [
        f"gan.out={folder}",
        f"gan.plots={folder}/plots",
        f"gan.steps={args.gan_steps}",
        "gan.include_weak=false",  # the labelled images only, as the paper pre-trains
        f"gan.eval_images={min(params.gan.eval_images, labelled)}",  # the floor reads the train split
    ]
    params = run_params([*base, *settings], folder, fraction, 0, [])
    from pipeline.train.engine import COMPLETE_MARKER

    marker = folder / COMPLETE_MARKER  # the run's summary, written when it finished
    recorded = folder / "comparison_gan.json"  # the gan params the runs of this fraction were built on
    wanted = {
        key: value for key, value in params.gan.model_dump(mode="json").items() if key not in ("out", "plots")
    }
    if recorded.is_file() and json.loads(recorded.read_text()) != wanted:
        raise ParamsError(
            f"{folder}: its SAGAN, and every run of this fraction built on it, came from other gan params "
            f"(--gan-steps, --set gan.*); use another --work, or remove {folder.parent} to start afresh"
        )
    if not (marker.is_file() and json.loads(marker.read_text()).get("steps") == args.gan_steps):
        train_gan(params, progress=False)  # resumes an interrupted run
    write_json_atomic(recorded, wanted)
    return (folder / "best.pt").resolve()


def finished(params: Params, variant: str, folder: Path) -> bool:
    """The variant's runs wrote their completion marker (then they are not touched again, even when
    the training code changed since: the comparison keeps the models it measured)."""
    from pipeline.train.builders import model_runs
    from pipeline.train.engine import COMPLETE_MARKER

    if variant in TRAIN_MT:
        return all((run.folder / COMPLETE_MARKER).is_file() for run in model_runs(params, variant))
    return (folder / "models" / variant / COMPLETE_MARKER).is_file()


def train_variant(params: Params, variant: str, folder: Path) -> str | None:
    """Train one variant unless finished; return the checkpoint to evaluate for train_mgm variants."""
    from pipeline.train.multitask import train_variants

    out = folder / "models" / variant
    if finished(params, variant, folder):
        return None if variant in TRAIN_MT else str(out / "best.pt")
    if variant == "mgm-shards":
        if not finished(params, "mgm", folder):
            raise ParamsError(f"--variants: mgm-shards needs the full mgm run of {folder} (add mgm)")
        from pipeline.synthesis import synthesize

        if not (Path(params.mix.synthetic) / "provenance.json").is_file():
            synthesize(params, progress=False)
    if variant in TRAIN_MT:
        train_variants(params, [variant], progress=False)
        return None
    from pipeline.train.mgm import train_mgm

    params = params.model_copy(update={"mgm": params.mgm.model_copy(update={"out": str(out)})})
    train_mgm(params, progress=False)
    return str(out / "best.pt")


def evaluate_run(params: Params, folder: Path, checkpoints: dict[str, str]) -> dict[str, Any]:
    trained = [variant for variant in TRAIN_MT if (folder / "mt-models" / variant).is_dir()]
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


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A results row under the raw file's column names (``seg_miou``, ``depth_mae``, ...)."""
    out = {}
    for key, value in row.items():
        out[f"{key}_{TASKS[key].primary_metric}" if key in TASKS else key] = value
    return out


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    renamed = [csv_row(row) for row in rows]
    columns = [c for c in CSV_COLUMNS if any(c in row for row in renamed)]
    columns += sorted({key for row in renamed for key in row} - set(columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(renamed)


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (or skip, when finished) and evaluate ``args.variants`` for every fraction and seed."""
    rows: list[dict[str, Any]] = []
    wanted = [name for name in ALL if name in args.variants]
    tests = [f"data.rooms.test={args.test_images}"] if args.test_images else []
    gans = {fraction: pretrained_gan(args, fraction, [*args.set, *tests]) for fraction in args.fractions}
    for fraction in args.fractions:  # every GAN is there (or refused) before any variant trains
        base = [*args.set, *tests, f"mgm.gan_checkpoint={gans[fraction]}"]
        for seed in args.seeds:
            folder = fraction_folder(args.work, fraction) / f"seed-{seed}"
            saved = folder / "results.json"
            if saved.is_file():
                found = json.loads(saved.read_text())
                if {row["variant"] for row in found} >= set(wanted):
                    rows += [row for row in found if row["variant"] in wanted]
                    continue
            params = run_params(base, folder, fraction, seed, [])
            shard_once(params)
            timings = folder / "seconds.json"
            seconds = json.loads(timings.read_text()) if timings.is_file() else {}
            checkpoints: dict[str, str] = {}
            for variant in wanted:
                started = time.perf_counter()
                extra = [] if variant in TRAIN_MT else VARIANTS[variant]
                variant_params = run_params(base, folder, fraction, seed, extra)
                path = train_variant(variant_params, variant, folder)
                if path:
                    checkpoints[variant] = path
                if variant not in seconds:
                    seconds[variant] = round(time.perf_counter() - started, 1)
                    timings.write_text(json.dumps(seconds, indent=1))
                print(f"labels {fraction:g} seed {seed}: {variant} {seconds[variant]} s", flush=True)
            results = evaluate_run(params, folder, checkpoints)
            tasks = list(params.model.tasks)
            from pipeline.data.reader import read_summary

            test_images = int(read_summary(params.shard.out)["splits"]["test"]["samples"])
            found = [
                {"fraction": fraction, "seed": seed, "variant": name, "test_images": test_images,
                 "seconds": seconds[name], **primary(results[name], tasks)}
                for name in ALL if name in results and name in wanted
            ]  # fmt: skip
            kept = json.loads(saved.read_text()) if saved.is_file() else []
            kept = [row for row in kept if row["variant"] not in {new["variant"] for new in found}]
            write_json_atomic(saved, kept + found)  # a subset run keeps the other variants' rows
            rows += found
    return rows


def ratio_sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    """train_mt@mgm-shards at each ratio on the synthetic set of the full MGM run (first fraction, seed)."""
    from pipeline.synthesis import synthesize
    from pipeline.train.multitask import train_variants

    fraction, seed = args.fractions[0], args.seeds[0]
    folder = fraction_folder(args.work, fraction) / f"seed-{seed}"
    tests = [f"data.rooms.test={args.test_images}"] if args.test_images else []
    gan = pretrained_gan(args, fraction, [*args.set, *tests])
    top = max(args.ratios)
    rows = []
    for ratio in args.ratios:
        run = folder / "ratios" / f"ratio-{ratio:g}"
        done = run / "result.json"
        if not done.is_file():
            extra = [
                f"mix.synthetic_ratio={ratio}",
                f"mix.synthetic={folder}/synthetic-sweep/mgm",
                f"synthesize.out={folder}/synthetic-sweep",
                f"train_mt.out={run}/mt-models",
                f"train_mt.plots={run}/plots",
                f"synthesize.count_relative={top}",
            ]
            base = [*args.set, *tests, f"mgm.gan_checkpoint={gan}"]
            params = run_params(base, folder, fraction, seed, extra)
            if ratio > 0 and not (Path(params.mix.synthetic) / "provenance.json").is_file():
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


def _cell(values: Sequence[float], digits: int = 4) -> str:
    array = np.asarray(values, dtype=float)
    std = f"{array.std(ddof=1):.{digits}f}" if len(array) > 1 else "–"
    return f"{array.mean():.{digits}f} ± {std}"


def _interval(values: Sequence[float], digits: int) -> str:
    mean, low, high = t_interval(values)
    if math.isnan(low):
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def markdown(rows: Sequence[dict[str, Any]], tasks: Sequence[str]) -> str:
    """Per fraction: mean ± std per variant, then the paired differences against MT per seed."""
    lines = []
    arrow = {task: "↓" if TASKS[task].lower_is_better else "↑" for task in tasks}
    for fraction in sorted({row["fraction"] for row in rows}):
        picked_rows = [row for row in rows if row["fraction"] == fraction]
        seeds = sorted({row["seed"] for row in picked_rows})
        test_images = sorted({row.get("test_images") for row in picked_rows} - {None})
        lines += [
            f"### {fraction:.0%} labels: {len(seeds)} seeds, {', '.join(map(str, test_images))} test images "
            "(mean ± std over seeds)",
            "",
        ]
        header = [f"{task} {TASKS[task].primary_metric} ({arrow[task]})" for task in tasks]
        normal_l1 = any("normal_l1" in row for row in picked_rows)
        deltas = [key for key in ("delta_m", "delta_m_mt") if any(key in row for row in picked_rows)]
        titles = {"delta_m": " | Δm vs ST (%, ↑)", "delta_m_mt": " | Δm vs MT (%, ↑)"}
        lines += [
            "| variant | " + " | ".join(header) + (" | normal L1 (↓)" if normal_l1 else "")
            + "".join(titles[key] for key in deltas) + " |",
            "|---|" + "---|" * (len(tasks) + len(deltas) + normal_l1),
        ]  # fmt: skip
        for variant in ALL:
            picked = [row for row in picked_rows if row["variant"] == variant]
            if not picked:
                continue
            cells = [_cell([row[task] for row in picked]) for task in tasks]
            if normal_l1:
                cells.append(_cell([row.get("normal_l1", math.nan) for row in picked]))
            for key in deltas:
                cells.append(_cell([100 * row.get(key, math.nan) for row in picked], 2))
            lines.append(f"| {TITLES[variant]} | " + " | ".join(cells) + " |")
        lines += ["", "Paired against MT of the same seed: mean difference [95 % t-interval, n − 1 degrees "
                  f"of freedom over the n seeds both have; here n = {len(seeds)} unless a variant lacks "
                  "seeds]; Δm in %, a positive Δm is better; a task's difference is better when it "
                  "points the way of its arrow.", ""]  # fmt: skip
        lines += [
            "| variant | Δm vs MT (%) | "
            + " | ".join(f"Δ {task} {TASKS[task].primary_metric} ({arrow[task]})" for task in tasks) + " |",
            "|---|---|" + "---|" * len(tasks),
        ]  # fmt: skip
        by_seed = {(row["seed"], row["variant"]): row for row in picked_rows}
        for variant in ALL:
            if variant == "mt" or not any(row["variant"] == variant for row in picked_rows):
                continue
            pairs = [(by_seed[(s, variant)], by_seed[(s, "mt")]) for s in seeds
                     if (s, variant) in by_seed and (s, "mt") in by_seed]  # fmt: skip
            if not pairs:
                continue
            cells = [_interval([100 * a["delta_m_mt"] for a, _ in pairs], 2)]  # against MT of its seed
            cells += [_interval([a[task] - b[task] for a, b in pairs], 4) for task in tasks]
            lines.append(f"| {TITLES[variant]} | " + " | ".join(cells) + " |")
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gan",
        default="models/gan/best.pt",
        help="pre-trained SAGAN (train_gan checkpoint); {fraction} stands for the label fraction",
    )
    parser.add_argument(
        "--gan-steps", type=int, default=None, help="pre-train a SAGAN per fraction on its labelled images"
    )
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=ORDER, choices=ALL, help="train these")
    parser.add_argument("--test-images", type=int, default=None, help="data.rooms.test (rooms only)")
    parser.add_argument("--ratios", type=float, nargs="*", default=[], help="mix.synthetic_ratio sweep")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override")
    parser.add_argument("--work", default="bench/out/mgm_comparison", help="runs and their results")
    parser.add_argument("--csv", default=None, help="the raw rows, also written to <work>/results.csv")
    parser.add_argument("--out", default=None, help="markdown tables")
    parser.add_argument("--plot", default=None, help="ratio plot PNG")
    args = parser.parse_args(argv)
    if "mgm-shards" in args.variants and "mgm" not in args.variants:
        parser.error("--variants: mgm-shards trains on the full mgm run's synthetic set; add mgm")
    if args.gan_steps is not None and args.gan_steps < 1:
        parser.error(f"--gan-steps must be at least 1, got {args.gan_steps}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tasks = list(load_params("params.yaml", args.set).model.tasks)
        rows = compare(args)
    except ParamsError as error:
        print(f"mgm_comparison: error: {error}", file=sys.stderr)
        return 2
    work = Path(args.work)
    write_csv(rows, work / "results.csv")
    if args.csv:
        write_csv(rows, Path(args.csv))
    text = markdown(rows, tasks)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.ratios:
        sweep = ratio_sweep(args)
        with (work / "ratios.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(sweep[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(sweep)
        if args.plot:
            plot_ratios(sweep, tasks, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
