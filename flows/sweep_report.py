"""The comparison of a ratio sweep: one row per ratio, a CSV, a markdown table and a plot of metrics."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flows.experiments import Experiment
from pipeline.atomic import write_bytes_atomic

ROW_KEYS = ("ratio", "experiment", "rev")


def sweep_rows(results: Sequence[tuple[float, Experiment]]) -> list[dict[str, Any]]:
    """``ratio, experiment, rev`` and every metric as ``<file stem>:<key>``, one row per ratio."""
    files = sorted({file for _, experiment in results for file in experiment.metrics})
    unique = len({Path(file).stem for file in files}) == len(files)
    rows = []
    for ratio, experiment in sorted(results, key=lambda item: item[0]):
        row: dict[str, Any] = {"ratio": ratio, "experiment": experiment.name, "rev": experiment.rev[:7]}
        for file in files:
            label = Path(file).stem if unique else file
            for key, value in experiment.metrics.get(file, {}).items():
                row[f"{label}:{key}"] = value
        rows.append(row)
    return rows


def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The numeric metric columns of ``rows`` in first-seen order."""
    seen = dict.fromkeys(key for row in rows for key in row if key not in ROW_KEYS)
    return [key for key in seen if all(_number(row.get(key)) is not None for row in rows if key in row)]


def varying_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Numeric metric columns whose value differs between ratios (all of them when none differ)."""
    columns = metric_columns(rows)
    varying = [key for key in columns if len({row.get(key) for row in rows}) > 1]
    return varying or columns


def choose_plot_metrics(rows: Sequence[Mapping[str, Any]], wanted: Sequence[str], limit: int = 12):
    """(metrics to plot, entries of ``wanted`` matching none); ``wanted`` holds ``file:key`` or ``key``."""
    columns = metric_columns(rows)
    if not wanted:
        return varying_columns(rows)[:limit], []
    chosen, unmatched = [], []
    for entry in wanted:
        matches = [column for column in columns if column == entry or column.endswith(f":{entry}")]
        chosen += [column for column in matches if column not in chosen]
        if not matches:
            unmatched.append(entry)
    return chosen[:limit], unmatched


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A markdown table of ``rows`` with the row keys then ``columns``."""
    header = [*ROW_KEYS, *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(key, "")) for key in header) + " |")
    return "\n".join(lines)


def plot_png(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], ratio_param: str) -> bytes:
    """One small line plot per metric against the ratio, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(len(metrics), 1)
    columns = min(count, 3)
    lines = math.ceil(count / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.0 * lines), squeeze=False)
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    for axis, metric in zip(axes.flat, metrics):
        points = sorted((row["ratio"], _number(row.get(metric))) for row in rows)
        points = [(x, y) for x, y in points if y is not None]
        axis.plot([x for x, _ in points], [y for _, y in points], marker="o")
        axis.set_title(metric, fontsize=9)
        axis.set_xlabel(ratio_param, fontsize=8)
        axis.grid(alpha=0.3)
    if not metrics:
        axes.flat[0].text(0.5, 0.5, "no numeric metrics", ha="center", va="center")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def write_sweep_files(
    rows: Sequence[Mapping[str, Any]], plot_metrics: Sequence[str], out_dir: str | Path, ratio_param: str
) -> dict[str, Path]:
    """``sweep.csv`` (every metric), ``sweep.md`` (metrics that vary) and ``sweep.png`` under ``out_dir``."""
    out = Path(out_dir)
    header = [*ROW_KEYS, *metric_columns(rows)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    table = markdown_table(rows, varying_columns(rows))
    markdown = f"# Sweep of `{ratio_param}`\n\n{table}\n\n![metrics against the ratio](sweep.png)\n"
    return {
        "csv": write_bytes_atomic(out / "sweep.csv", buffer.getvalue().encode()),
        "md": write_bytes_atomic(out / "sweep.md", markdown.encode()),
        "png": write_bytes_atomic(out / "sweep.png", plot_png(rows, plot_metrics, ratio_param)),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
