"""ST, MT and MT with MTI-Net or XTasC-Net as M, on the embedded default, per seed.

Each seed trains, in its own folder under ``--work`` (one shard set shared by all seeds):

* ``st``: the single-task models (``shared`` head, the Δm reference),
* ``mt``: one ``shared`` multi-task model,
* ``unet``: the ``shared`` decoders with skips from the encoder's 1/2 ... 1/16 maps (the control that
  separates MTI-Net's multi-scale input from its distillation),
* ``mti``, ``xtasc``: one multi-task model with ``model.architecture=mti`` / ``xtasc``,

then evaluates them on the test split in one ``evaluate`` call (the checkpoints carry their
architecture). Finished runs are skipped, so an interrupted comparison continues where it stopped.
Writes ``<work>/architectures.csv`` (one row per seed and variant: each task's primary metric, the
normals' L1, Δm against ST and MT, training seconds) and, with ``--out``, a markdown table: mean ± std
over seeds and the paired difference of Δm against MT with a 95 % t-interval.

    python bench/architecture_comparison.py --seeds 0 1 2 --out docs/results/architectures/table.md

``--variants mt unet`` trains and compares a subset (MT must be among them).
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
from pipeline.evaluation import DELTA_VARIANTS, evaluate
from pipeline.tasks.registry import TASKS

ARCHITECTURE_VARIANTS = {
    "unet": ["model.architecture=unet"],
    "mti": ["model.architecture=mti"],
    "xtasc": ["model.architecture=xtasc"],
}
ORDER = ["st", "mt", *ARCHITECTURE_VARIANTS]
TITLES = {
    "st": "single-task (ST)",
    "mt": "multi-task, shared (MT)",
    "unet": "multi-task, shared + skips (`unet`)",
    "mti": "MTI-Net",
    "xtasc": "XTasC-Net",
}


def run_params(work: Path, seed: int, variant: str, extra: Sequence[str]) -> Params:
    """Params of one variant's run: the shared shards, outputs under ``work/seed-<seed>/<variant>``."""
    folder = work / f"seed-{seed}" / variant
    settings = [
        f"shard.out={work / 'shards'}",
        f"train_mt.out={folder}/models",
        f"train_mt.plots={folder}/plots",
        f"train_mt.seed={seed}",
        f"evaluate.out={work / f'seed-{seed}' / 'reports'}",
    ]
    return load_params("params.yaml", [*settings, *extra, *ARCHITECTURE_VARIANTS.get(variant, [])])


def trained(params: Params, variant: str) -> None:
    """Train ``variant`` (``st`` or a multi-task model) unless its runs finished."""
    from pipeline.train.builders import model_runs
    from pipeline.train.engine import COMPLETE_MARKER
    from pipeline.train.multitask import train_variants

    kind = "st" if variant == "st" else "mt"
    if not all((run.folder / COMPLETE_MARKER).is_file() for run in model_runs(params, kind)):
        train_variants(params, [kind], progress=False)


def primary(result: dict[str, Any], tasks: Sequence[str]) -> dict[str, float]:
    values = {task: float(result[task][TASKS[task].primary_metric]) for task in tasks}
    if "normal" in tasks:
        values["normal_l1"] = float(result["normal"]["l1"])
    return values | {key: float(result[key]) for key in ("delta_m", *DELTA_VARIANTS) if key in result}


def compare_seed(
    work: Path, seed: int, extra: Sequence[str], variants: Sequence[str] = tuple(ORDER)
) -> list[dict[str, Any]]:
    from pipeline.data.sharding import shard_dataset

    variants = [name for name in ORDER if name in variants]
    saved = work / f"seed-{seed}" / "results.json"
    if saved.is_file():
        found = json.loads(saved.read_text())
        if {row["variant"] for row in found} >= set(variants):
            return [row for row in found if row["variant"] in variants]
    base = run_params(work, seed, "st", extra)
    if not (Path(base.shard.out) / "summary.json").is_file():
        shard_dataset(base, progress=False)
    timings = work / f"seed-{seed}" / "seconds.json"
    seconds = json.loads(timings.read_text()) if timings.is_file() else {}
    for variant in variants:
        started = time.perf_counter()
        trained(run_params(work, seed, variant, extra), variant)
        if variant not in seconds:
            seconds[variant] = round(time.perf_counter() - started, 1)
            timings.parent.mkdir(parents=True, exist_ok=True)
            timings.write_text(json.dumps(seconds, indent=1))
        print(f"seed {seed}: {variant} {seconds[variant]} s", flush=True)
    # ST and MT from their own folders; MTI-Net and XTasC-Net as checkpoints (they carry their head).
    st, mt = (run_params(work, seed, name, extra) for name in ("st", "mt"))
    checkpoints = {
        name: str(work / f"seed-{seed}" / name / "models" / "mt" / "best.pt")
        for name in ARCHITECTURE_VARIANTS
        if name in variants
    }
    st_folder = Path(st.train_mt.out) / "st"
    mt_folder = Path(mt.train_mt.out) / "mt"
    joined = work / f"seed-{seed}" / "joined"
    joined.mkdir(parents=True, exist_ok=True)
    for name, target in (("st", st_folder), ("mt", mt_folder)):
        if name not in variants:
            continue
        link = joined / name
        if not link.exists():
            link.symlink_to(target.resolve(), target_is_directory=True)
    params = run_params(
        work,
        seed,
        "st",
        [*extra, f"train_mt.out={joined}", f"evaluate.checkpoints={json.dumps(checkpoints)}"],
    )
    params = params.model_copy(
        update={
            "train_mt": params.train_mt.model_copy(
                update={"variants": [name for name in ("st", "mt") if name in variants]}
            )
        }
    )
    results = evaluate(params, progress=False, metrics_dir=work / f"seed-{seed}" / "metrics")
    tasks = list(params.model.tasks)
    rows = [
        {"seed": seed, "variant": name, "seconds": seconds[name], "test_images": params.data.rooms.test,
         **primary(results[name], tasks)}
        for name in variants
    ]  # fmt: skip
    kept = json.loads(saved.read_text()) if saved.is_file() else []
    kept = [row for row in kept if row["variant"] not in variants]
    write_json_atomic(saved, kept + rows)  # a subset run keeps the other variants' rows
    return rows


def markdown(rows: Sequence[dict[str, Any]], tasks: Sequence[str]) -> str:
    seeds = sorted({row["seed"] for row in rows})
    header = [
        f"{task} {TASKS[task].primary_metric} ({'↓' if TASKS[task].lower_is_better else '↑'})"
        for task in tasks
    ]
    with_st = any(row["variant"] == "st" for row in rows)
    # with ST: the paired difference of the two Δm against ST; without: Δm against MT of the seed
    paired_key = "delta_m" if with_st else "delta_m_mt"
    paired_title = "paired Δm − Δm(MT)" if with_st else "Δm against MT of the same seed"
    lines = [
        f"{len(seeds)} seeds (mean ± std over seeds); Δm in %; {paired_title} with a 95 % t-interval",
        "",
        "| variant | "
        + " | ".join(header)
        + " | normal L1 (↓) | Δm vs ST (↑) | Δm vs MT: paired mean [95 % CI] | s/run |",
        "|---|" + "---|" * (len(tasks) + 4),
    ]
    by_seed = {(row["seed"], row["variant"]): row for row in rows}
    for variant in ORDER:
        picked = [row for row in rows if row["variant"] == variant]
        if not picked:
            continue

        def cell(values: Sequence[float], digits: int = 4) -> str:
            array = np.asarray(values, dtype=float)
            std = f"{array.std(ddof=1):.{digits}f}" if len(array) > 1 else "–"
            return f"{array.mean():.{digits}f} ± {std}"

        paired = [
            100 * (by_seed[(s, variant)][paired_key] - (by_seed[(s, "mt")][paired_key] if with_st else 0.0))
            for s in seeds
            if (s, variant) in by_seed and (s, "mt") in by_seed
        ]
        mean, low, high = t_interval(paired) if paired else (math.nan, math.nan, math.nan)
        cells = [
            *(cell([row[task] for row in picked]) for task in tasks),
            cell([row["normal_l1"] for row in picked]),
            cell([100 * row["delta_m"] for row in picked], 2) if with_st else "–",
            "–" if variant == "mt" else f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]",
            f"{np.mean([row['seconds'] for row in picked]):.0f}",
        ]
        lines.append(f"| {TITLES[variant]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params override")
    parser.add_argument("--work", default="bench/out/architectures", help="runs and their results")
    parser.add_argument("--out", default=None, help="markdown table")
    parser.add_argument(
        "--csv", default=None, help="also copy the rows here (default: <work>/architectures.csv)"
    )
    parser.add_argument(
        "--variants", nargs="+", default=ORDER, choices=ORDER, help="train and compare these (default: all)"
    )
    args = parser.parse_args(argv)
    if not args.variants or "mt" not in args.variants:
        parser.error("--variants: the comparison is against MT; include mt")
    work = Path(args.work).resolve()
    rows = [row for seed in args.seeds for row in compare_seed(work, seed, args.set, args.variants)]
    tasks = list(load_params("params.yaml", args.set).model.tasks)
    for path in filter(None, [work / "architectures.csv", args.csv and Path(args.csv)]):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    text = markdown(rows, tasks)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
