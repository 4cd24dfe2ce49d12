"""Shared helpers for benchmarks: machine description, timing, JSON results."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
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


def gan_on_shards(shards: str | Path, overrides: list[str]) -> tuple[Params, Any, Any]:
    """(params, fresh G/D models on the CPU seeded 0, a real-batch iterator over ``train``) for
    ``train_gan``'s own step: params.yaml plus ``overrides``, at the shards' resolution."""
    from pipeline.data.reader import read_summary, shard_resolution
    from pipeline.generators import sagan_config
    from pipeline.train.gan.batches import RealBatches
    from pipeline.train.gan.loop import build_models

    params = load_params("params.yaml", [f"shard.out={shards}", *overrides])
    torch.manual_seed(0)
    summary = read_summary(shards)
    config = sagan_config(params, len(summary["scene_names"]), shard_resolution(summary, shards))
    models = build_models(config, params.gan, torch.device("cpu"))
    return params, models, RealBatches(shards, ["train"], params.gan.batch_size, 0, 0)


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


def time_joint_iterations(
    models: Any, optimizers: Any, batch: dict, params: Params, resolution: int, warmup: int, iterations: int
) -> tuple[dict[str, list[float]], list[float]]:
    """(seconds per step name, seconds per whole iteration) of ``iterations`` joint MGM iterations on
    one fixed batch, after ``warmup`` untimed ones (bench_mgm_iteration and gpu_check)."""
    from pipeline.train.mgm_steps import StepSettings, active_steps, joint_iteration
    from pipeline.train.ssl import build_views

    settings, augment, steps = (
        StepSettings.from_params(params),
        build_views(params.ssl, resolution),
        active_steps(params),
    )
    per_step: dict[str, list[float]] = {step: [] for step in steps}
    totals: list[float] = []
    for iteration in range(warmup + iterations):
        timings: dict[str, float] = {}
        joint_iteration(models, optimizers, batch, settings, augment, steps, iteration, None, timings)
        if iteration >= warmup:
            for step, seconds in timings.items():
                per_step[step].append(seconds)
            totals.append(sum(timings.values()))
    return per_step, totals


def synthetic_batch(size: int, resolution: int, classes: int = 13) -> dict[str, torch.Tensor]:
    """A fixed random labelled batch (images, seg, depth, normals) for timing training steps."""
    generator = torch.Generator().manual_seed(0)
    depth = torch.rand(size, 1, resolution, resolution, generator=generator) * 5 + 0.5
    normal = torch.nn.functional.normalize(
        torch.randn(size, 3, resolution, resolution, generator=generator), dim=1
    )
    return {
        "rgb": torch.rand(size, 3, resolution, resolution, generator=generator),
        "seg": torch.randint(0, classes, (size, resolution, resolution), generator=generator),
        "depth": depth,
        "depth_valid": depth > 0,
        "normal": normal,
    }


def t_interval(values: Any) -> tuple[float, float, float]:
    """Mean and 95 % t-interval (Student's t, n - 1 degrees of freedom) of paired differences;
    the bounds are NaN below two values."""
    from scipy import stats

    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))
    return mean, mean - half, mean + half
