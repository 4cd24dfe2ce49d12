"""Evaluate trained variants on the test split: metrics, a qualitative grid each, a report with Δm.

Variants: ``st`` (one model per task, each from ``<train_mt.out>/st/<task>/best.pt``) and ``mt``
(``<train_mt.out>/mt/best.pt``), plus the ``trivial`` reference: a constant prediction computed
from the train split (the class prior, whose argmax is the majority class; the mean valid depth;
the normalised mean normal). Δm compares each variant's primary metrics (mIoU, depth MAE, mean
normal angle) with the single-task models, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn
from torch.utils.data import DataLoader

from pipeline.atomic import write_bytes_atomic
from pipeline.checkpoint import CheckpointError, load_checkpoint, load_state_strict
from pipeline.config import Params
from pipeline.data.dense_maps import MAP_TASKS
from pipeline.data.reader import ShardDataset, collate, read_summary, require_tasks
from pipeline.data.schema import IGNORE_LABEL
from pipeline.errors import ParamsError
from pipeline.inference import evaluate_outputs, fixed_samples
from pipeline.metrics.dense import delta_m
from pipeline.models.multitask import build_multitask_net
from pipeline.tasks.registry import TASKS
from pipeline.train.history import write_metrics_json
from pipeline.viz import (
    class_palette,
    colorize_depth,
    colorize_map,
    colorize_normal,
    colorize_seg,
    save_image,
)


class TrivialPredictor(nn.Module):
    """Constant predictions from train-split statistics: class prior (argmax = majority class),
    mean valid depth, normalised mean valid normal, and each map task's mean per channel."""

    def __init__(
        self,
        class_log_prior: Tensor,
        mean_depth: float,
        mean_normal: Tensor,
        map_means: Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.register_buffer("class_log_prior", class_log_prior.float())
        self.register_buffer("mean_depth", torch.tensor(float(mean_depth)))
        self.register_buffer("mean_normal", torch.nn.functional.normalize(mean_normal.float(), dim=0))
        self.map_names = list(map_means or {})
        for name, mean in (map_means or {}).items():
            self.register_buffer(f"mean_{name}", mean.float())

    @classmethod
    def from_split(cls, folder: str | Path, split: str, num_classes: int) -> TrivialPredictor:
        counts = torch.zeros(num_classes, dtype=torch.float64)
        depth_sum = depth_n = 0.0
        normal_sum = torch.zeros(3, dtype=torch.float64)
        map_sums: dict[str, Tensor] = {}
        map_counts: dict[str, float] = {}
        for item in ShardDataset(folder, split):
            if "seg" in item:
                labels = item["seg"][item["seg"] != IGNORE_LABEL]
                counts += torch.bincount(labels.reshape(-1), minlength=num_classes)[:num_classes].double()
            if "depth" in item:
                depth_sum += float(item["depth"][item["depth_valid"]].double().sum())
                depth_n += float(item["depth_valid"].sum())
            if "normal" in item:
                normal_sum += item["normal"].double().sum(dim=(1, 2))
            for name in MAP_TASKS:
                if name in item:
                    valid = item[f"{name}_valid"][0]
                    total = item[name].double()[:, valid].sum(dim=1)
                    map_sums[name] = map_sums.get(name, torch.zeros_like(total)) + total
                    map_counts[name] = map_counts.get(name, 0.0) + float(valid.sum())
        prior = (counts + 1.0) / (counts.sum() + num_classes)
        means = {name: map_sums[name] / max(map_counts[name], 1.0) for name in map_sums}
        return cls(prior.log(), depth_sum / max(depth_n, 1.0), normal_sum, means)

    def forward(self, rgb: Tensor) -> dict[str, Tensor]:
        batch, _, height, width = rgb.shape
        shape = (batch, -1, height, width)
        outputs = {
            "seg": self.class_log_prior.view(1, -1, 1, 1).expand(shape),
            "depth": self.mean_depth.view(1, 1, 1, 1).expand(batch, 1, height, width),
            "normal": self.mean_normal.view(1, 3, 1, 1).expand(shape),
        }
        for name in self.map_names:
            outputs[name] = getattr(self, f"mean_{name}").view(1, -1, 1, 1).expand(shape)
        return outputs


def load_trained(
    path: str | Path,
    tasks: Sequence[str],
    build: Callable[[Sequence[str], int], nn.Module],
    num_classes: int,
    expected_config: Mapping[str, Any] | None = None,
) -> nn.Module:
    """A trained model from ``best.pt``; errors name the file when tasks or shapes differ.

    M is rebuilt from the checkpoint's own ``model_config`` (architecture, widths) when it has one, so
    ``evaluate.checkpoints`` may name models of any architecture; ``build`` (from the params) serves
    checkpoints written before checkpoints carried it. With ``expected_config`` (a variant's own
    runs, which the params describe) a stored config that differs from it is refused."""
    checkpoint = load_checkpoint(path)
    if list(checkpoint.get("tasks", [])) != list(tasks):
        raise CheckpointError(
            f"{path} holds tasks {checkpoint.get('tasks')} but the params ask for {list(tasks)}: "
            "retrain (dvc repro / mgm train_mt) or fix model.tasks"
        )
    if checkpoint.get("num_classes") != num_classes:
        raise CheckpointError(
            f"{path} was trained for {checkpoint.get('num_classes')} classes, the shards have {num_classes}"
        )
    config = checkpoint.get("model_config")
    if config and expected_config is not None:
        differ = [
            key for key in expected_config if config.get(key, expected_config[key]) != expected_config[key]
        ]
        if differ:
            found = "; ".join(f"model.{key} {config[key]} (params: {expected_config[key]})" for key in differ)
            raise CheckpointError(
                f"{path} was trained with {found}: retrain (dvc repro / mgm train_mt) or set the params back"
            )
    model = build_multitask_net(tasks, num_classes, **config) if config else build(tasks, num_classes)
    load_state_strict(model, checkpoint["model"], str(path))
    return model.eval()


class Ensemble(nn.Module):
    """Single-task models side by side: each contributes its own task's output."""

    def __init__(self, models: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleDict(dict(models))

    def forward(self, rgb: Tensor) -> dict[str, Tensor]:
        return {task: model(rgb)[task] for task, model in self.models.items()}


def variant_predictor(params: Params, variant: str, num_classes: int) -> nn.Module:
    """The trained ``st`` ensemble or ``mt`` model (``best.pt`` of each finished run)."""
    from pipeline.train.builders import build_model, model_config, model_runs
    from pipeline.train.engine import COMPLETE_MARKER

    def build(tasks: Sequence[str], classes: int) -> nn.Module:
        return build_model(params, tasks, classes)

    models = {}
    for run in model_runs(params, variant):
        if not (run.folder / COMPLETE_MARKER).is_file():
            raise CheckpointError(
                f"{run.folder}: training has not finished (no {COMPLETE_MARKER}); run `mgm train_mt "
                f"--variant {variant}` or `dvc repro`"
            )
        models[run.name] = load_trained(
            run.folder / "best.pt", run.tasks, build, num_classes, expected_config=model_config(params)
        )
    if variant == "st":
        return Ensemble(models)
    return models[variant]


def checkpoint_predictor(params: Params, name: str, path: str | Path, num_classes: int) -> nn.Module:
    """A multi-task model from any checkpoint in ``train_mt``'s format (``evaluate.checkpoints``)."""
    from pipeline.train.builders import build_model

    if not Path(path).is_file():
        raise CheckpointError(f"evaluate.checkpoints.{name}: {path} does not exist; train it first")
    return load_trained(path, params.model.tasks, lambda t, c: build_model(params, t, c), num_classes)


def _colour(task: str, value: np.ndarray, palette: np.ndarray, depth_max: float) -> np.ndarray:
    if task == "seg":
        return colorize_seg(value, palette)
    if task == "depth":
        return colorize_depth(value[0], vmax=depth_max)
    if task == "normal":
        return colorize_normal(np.moveaxis(value, 0, -1))
    return colorize_map(value)


@torch.no_grad()
def prediction_grid(
    predictor: nn.Module, samples: Mapping[str, Any], tasks: Sequence[str], num_classes: int, cell: int = 96
) -> Image.Image:
    """Rows: samples; columns: input, then ground truth and prediction for each task."""
    outputs = predictor(samples["rgb"])
    palette = class_palette(num_classes)
    titles = ["input"] + [f"{task} {kind}" for task in tasks for kind in ("truth", "pred")]
    header, gap = 16, 2
    rows = len(samples["rgb"])
    grid = Image.new("RGB", (len(titles) * (cell + gap), header + rows * (cell + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for column, title in enumerate(titles):
        draw.text((column * (cell + gap) + 3, 2), title, fill=(0, 0, 0), font=font)
    depth_max = float(samples["depth"].max()) if "depth" in samples else 1.0
    for row in range(rows):
        rgb = (samples["rgb"][row].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        cells = [rgb]
        for task in tasks:
            spec = TASKS[task]
            truth = samples[spec.target][row].numpy()
            pred = spec.predict(outputs[task].float())[row].numpy()
            if task == "depth":
                pred = np.clip(pred, 1e-3, None)
            cells += [_colour(task, truth, palette, depth_max), _colour(task, pred, palette, depth_max)]
        for column, array in enumerate(cells):
            image = Image.fromarray(array).resize((cell, cell), Image.Resampling.NEAREST)
            grid.paste(image, (column * (cell + gap), header + row * (cell + gap)))
    return grid


def primary_metrics(
    results: Mapping[str, Mapping[str, float]],
    tasks: Sequence[str],
    metric_of: Mapping[str, str] | None = None,
) -> tuple[dict, dict]:
    """(``{task/metric: value}``, ``{task/metric: lower_is_better}``) of the Δm metrics: each task's
    primary metric, or the one ``metric_of`` names for it (all lower-is-better but ``seg``'s)."""
    values, lower = {}, {}
    for task in tasks:
        spec = TASKS[task]
        metric = (metric_of or {}).get(task, spec.primary_metric)
        key = f"{task}/{metric}"
        values[key] = results[task][metric]
        lower[key] = spec.lower_is_better
    return values, lower


DELTA_REFERENCES = {"delta_m": "st", "delta_m_mt": "mt"}
"""Result key -> the variant its Δm is measured against (when that variant was evaluated)."""
NORMAL_L1 = {"normal": "l1"}
DELTA_VARIANTS: dict[str, tuple[str, Mapping[str, str]]] = {
    **{key: (reference, {}) for key, reference in DELTA_REFERENCES.items()},
    "delta_m_normal_l1": ("st", NORMAL_L1),
    "delta_m_mt_normal_l1": ("mt", NORMAL_L1),
}
"""Result key -> (reference variant, metric replacing a task's primary one): the two Δm above, and
both with the normals' L1 (the paper's "mAD" form) in place of the mean angle."""


def with_delta_m(results: Mapping[str, dict[str, Any]], tasks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Add Δm against ST (``delta_m``) and against MT (``delta_m_mt``) to every variant's results,
    each when its reference variant is among them; with normals among the tasks, also both with the
    normals' L1 in place of the angle (``delta_m_normal_l1``, ``delta_m_mt_normal_l1``)."""
    out = {name: dict(value) for name, value in results.items()}
    for key, (reference, metric_of) in DELTA_VARIANTS.items():
        if reference not in results or not set(metric_of) <= set(tasks):
            continue
        ref_values, lower = primary_metrics(results[reference], tasks, metric_of)
        for value in out.values():
            values, _ = primary_metrics(value, tasks, metric_of)
            value[key] = delta_m(values, ref_values, lower)
    return out


def headline_metrics(value: Mapping[str, Any], tasks: Sequence[str]) -> dict[str, float]:
    """The flat summary ``dvc metrics show`` prints for a variant: each task's primary test metric
    (``seg_miou``, ``depth_mae``, ...) and Δm in % against ST (``dm_st``) and MT (``dm_mt``), so that
    every variant's file has the same few columns (the detail is in ``<evaluate.out>/metrics/``)."""
    flat: dict[str, float] = {}
    for task in tasks:
        metric = TASKS[task].primary_metric
        flat[f"{task}_{metric}"] = float(f"{value[task][metric]:.4g}")
    for key, name in (("delta_m", "dm_st"), ("delta_m_mt", "dm_mt")):
        if key in value:
            flat[name] = round(100 * value[key], 2)
    return flat


_REPORT_COLUMNS = {
    "seg": [("miou", "mIoU ↑"), ("pixel_acc", "pixel acc ↑"), ("loss", "mean loss ↓")],
    "depth": [
        ("mae", "MAE ↓"), ("abs_rel", "AbsRel ↓"), ("rmse", "RMSE ↓"), ("delta1", "δ<1.25 ↑"),
        ("loss", "mean loss ↓"),
    ],
    "normal": [
        ("mean_angle", "mean° ↓"), ("median_angle", "median° ↓"), ("within_11_25", "<11.25° % ↑"),
        ("within_22_5", "<22.5° % ↑"), ("within_30", "<30° % ↑"), ("l1", "L1 [0,1] ↓"),
        ("loss", "mean loss ↓"),
    ],
    **{
        name: [("mae", "MAE ↓"), ("rmse", "RMSE ↓"), ("f1", "edge F1 ↑"), ("loss", "mean loss ↓")]
        for name in ("edge_texture", "edge_occlusion")
    },
    **{
        name: [("mae", "MAE ↓"), ("rmse", "RMSE ↓"), ("loss", "mean loss ↓")]
        for name in ("reshading", "curvature")
    },
}  # fmt: skip


def markdown_report(results: Mapping[str, Mapping[str, Any]], tasks: Sequence[str], params: Params) -> str:
    """The comparison table per task and Δm against the single-task models."""
    lines = [
        "# Evaluation on the test split",
        "",
        f"Shards `{params.shard.out}`, encoder `{params.model.encoder}`, tasks {', '.join(tasks)}, "
        f"{params.train_mt.epochs} epochs. `trivial` = constant prediction from train-split statistics "
        "(class prior / majority class, mean depth, mean normal). "
        "Models: `best.pt` (lowest weighted val loss).",
        "",
    ]
    for task in tasks:
        columns = _REPORT_COLUMNS.get(task, [(name, name) for name in next(iter(results.values()))[task]])
        lines += [f"## {task}", "", "| variant | " + " | ".join(title for _, title in columns) + " |"]
        lines.append("|---" * (len(columns) + 1) + "|")
        for name, value in results.items():
            cells = [_fmt(value[task].get(metric)) for metric, _ in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    names = {
        key: f"Δm vs {reference.upper()}{', normals L1' if metric_of else ''} (%)"
        for key, (reference, metric_of) in DELTA_VARIANTS.items()
    }
    present = [key for key in names if any(key in value for value in results.values())]
    if present:
        metrics = ", ".join(f"{task} {TASKS[task].primary_metric}" for task in tasks)
        titles = " | ".join(names[key] for key in present)
        lines += [
            "## Multi-task performance Δm",
            "",
            f"Δm = (1/T) Σ_t (-1)^l_t (M_t - M_ref,t) / M_ref,t over {metrics}, against the single-task "
            "networks (ST) and the plain multi-task network (MT); positive = better than the reference. "
            "The normals-L1 columns use the mean absolute error of normals encoded in [0, 1] instead of "
            "the mean angle (the form of the MGM paper's normals number).",
            "",
            f"| variant | {titles} |",
            "|---" * (len(present) + 1) + "|",
        ]
        for name, value in results.items():
            cells = " | ".join(f"{100 * value[key]:+.2f}" if key in value else "–" for key in present)
            lines.append(f"| {name} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.4g}"


def evaluate(params: Params, *, progress: bool = True, metrics_dir: str | Path = "metrics") -> dict[str, Any]:
    """Evaluate the trivial reference, every ``train_mt.variants`` and ``evaluate.checkpoints`` on test.

    Writes the flat headline ``<metrics_dir>/<variant>.json`` (and ``trivial.json``) for ``dvc
    metrics show``; under ``evaluate.out``: every metric in ``metrics/<variant>.json``, the grids
    ``grids/grid_<variant>.png`` and ``evaluation.md``. Returns all results.
    """
    from pipeline.runtime import select_device

    cfg = params.evaluate
    device = select_device(params.runtime.device)
    shards = Path(params.shard.out)
    summary = read_summary(shards)
    num_classes = len(summary["class_names"])
    tasks = list(params.model.tasks)
    require_tasks(summary, shards, tasks)
    loader = DataLoader(
        ShardDataset(shards, "test", dense=tasks), batch_size=cfg.batch_size, collate_fn=collate
    )
    samples = fixed_samples(shards, "test", cfg.grid_samples)
    predictors: dict[str, nn.Module] = {"trivial": TrivialPredictor.from_split(shards, "train", num_classes)}
    for variant in params.train_mt.variants:
        predictors[variant] = variant_predictor(params, variant, num_classes)
    for name, path in params.evaluate.checkpoints.items():
        if name in predictors:
            raise ParamsError(f"evaluate.checkpoints: {name!r} clashes with a train_mt variant or 'trivial'")
        predictors[name] = checkpoint_predictor(params, name, path, num_classes)
    results = {}
    for name, predictor in predictors.items():
        predictor = predictor.to(device).eval()
        results[name] = evaluate_outputs(
            predictor, loader, tasks, num_classes, device,
            normal_kind=params.loss.normal, progress=progress, desc=f"evaluate {name}",
        )  # fmt: skip
        if name != "trivial":
            grid = prediction_grid(predictor.cpu(), samples, tasks, num_classes)
            save_image(grid, Path(cfg.out) / "grids" / f"grid_{name}.png")
    results = with_delta_m(results, tasks)
    for name, value in results.items():
        write_metrics_json(headline_metrics(value, tasks), Path(metrics_dir) / f"{name}.json")
        write_metrics_json(value, Path(cfg.out) / "metrics" / f"{name}.json")
    write_bytes_atomic(Path(cfg.out) / "evaluation.md", markdown_report(results, tasks, params).encode())
    return results
