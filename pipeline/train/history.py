"""Per-epoch (or per-N-steps) metrics rows kept in the checkpoint and written as CSV and JSON.

Keeping the history inside the checkpoint makes resume exact: after a restart the CSV is
rewritten from the restored rows, never appended twice.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.atomic import write_bytes_atomic, write_json_atomic


def write_history_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` as CSV (columns in first-seen order) for ``dvc plots``; atomic."""
    columns: list[str] = []
    for row in rows:
        columns += [name for name in row if name not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _format(row.get(name, "")) for name in columns})
    return write_bytes_atomic(path, buffer.getvalue().encode())


def write_metrics_json(metrics: dict[str, Any], path: str | Path) -> Path:
    """Write final metrics for ``dvc metrics`` (floats rounded to 6 significant digits)."""
    return write_json_atomic(path, _rounded(metrics))


def _format(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return value if not math.isfinite(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(item) for item in value]
    return value
