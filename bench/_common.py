"""Shared helpers for benchmarks: machine description, timing, JSON results."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pipeline.config import Params, load_params


def machine() -> dict[str, Any]:
    """What the benchmark ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def rooms_shard_params(out: str | Path, resolution: int, train: int, *extra: str) -> Params:
    """Params that shard ``train`` rooms images (plus one val and one test image) into ``out``."""
    settings = [f"shard.out={out}", f"data.resolution={resolution}", f"data.rooms.train={train}"]
    return load_params(None, [*settings, "data.rooms.val=1", "data.rooms.test=1", *extra])


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def report(name: str, results: dict[str, Any], out: str | None = None) -> None:
    """Print results as indented JSON, then the headline as one JSON object on the last line.

    The headline is the benchmark's name and every top-level number or string of ``results`` (a
    ratio under ``ratio``), so runs on different machines compare with ``tail -n 1``. ``out`` also
    gets the full results.
    """
    payload = {"benchmark": name, "machine": machine(), **results}
    text = json.dumps(payload, indent=2)
    print(text)
    headline = {"benchmark": name, **{k: v for k, v in results.items() if isinstance(v, (int, float, str))}}
    print(json.dumps(headline, separators=(", ", ": ")))
    if out:
        Path(out).write_text(text + "\n")
