"""Speed-up of channels-last memory format and bfloat16 autocast for a multi-task training step on CPU.

The default ``model`` params (every task), batch 16 at 64 px, 2 torch threads, Adam; the four
settings run interleaved for several rounds and the median step time of each is kept.

    python -m bench.bench_channels_last --rounds 5 --steps 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench._common import report, synthetic_batch
from pipeline.config import load_params
from pipeline.train.builders import autocast_factory, build_loss, build_model, build_optimizer
from pipeline.train.multitask import _Trainable

SETTINGS = {
    "fp32": (False, False),
    "channels_last": (True, False),
    "bf16_autocast": (False, True),
    "channels_last_bf16": (True, True),
}


def make_setting(params, channels_last: bool, bf16: bool, batch: dict):
    torch.manual_seed(0)
    net = build_model(params, params.model.tasks, 13)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        batch = dict(batch, rgb=batch["rgb"].contiguous(memory_format=torch.channels_last))
    trainable = _Trainable(
        net, build_loss(params, params.model.tasks), autocast_factory(torch.device("cpu"), bf16)
    )
    optimizer = build_optimizer(params, list(trainable.parameters()))

    def step() -> None:
        loss, _ = trainable(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params("params.yaml")
    batch = synthetic_batch(params.train_mt.batch_size, args.resolution)
    steps = {name: make_setting(params, cl, bf, batch) for name, (cl, bf) in SETTINGS.items()}
    for step in steps.values():  # warm-up (oneDNN primitive creation)
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps)
    medians = {name: statistics.median(values) for name, values in times.items()}
    report(
        "channels_last + bf16 autocast, multi-task training step on CPU",
        {
            "resolution": args.resolution,
            "batch_size": params.train_mt.batch_size,
            "threads": args.threads,
            "model": params.model.model_dump(),
            "step_ms": {name: round(1000 * value, 1) for name, value in medians.items()},
            "speedup_over_fp32": {name: round(medians["fp32"] / value, 3) for name, value in medians.items()},
            "ratio": round(medians["fp32"] / min(medians.values()), 3),  # the best setting's speed-up
            "rounds_ms": {name: [round(1000 * v, 1) for v in values] for name, values in times.items()},
        },
        args.out,
    )


if __name__ == "__main__":
    main()
