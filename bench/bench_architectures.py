"""What each ``model.architecture`` costs: parameters, multiply-adds per image, seconds per training step.

Builds M as the params describe it (``--set`` overrides apply; the default is params.yaml's 64 px
network with the three tasks) once per architecture, and times full training steps (forward with the
auxiliary outputs, every loss, backward, Adam) on random images and labels of the shard resolution.
Multiply-adds are half of torch's FLOP count of one forward pass of one image: at inference, and in
training with the auxiliary outputs (MTI-Net's per-scale predictions, XTasC-Net's transfer nets,
which inference skips).

    python bench/bench_architectures.py --steps 10 [--set model.encoder=halfwidth34 ...]

Last line: ``{"benchmark": "architectures", "shared_step_seconds": ..., "mti_vs_shared_step": ..., ...}``
(``<architecture>_parameters_m``, ``_gmacs_per_image``, ``_step_seconds`` for each).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import report, synthetic_batch
from pipeline.config import load_params
from pipeline.models.multitask import ARCHITECTURES
from pipeline.train.builders import build_loss, build_model


def measure(architecture: str, overrides: list[str], steps: int, batch_size: int) -> dict[str, float]:
    params = load_params("params.yaml", [*overrides, f"model.architecture={architecture}"])
    torch.manual_seed(0)
    tasks, classes, resolution = params.model.tasks, params.data.num_classes, params.data.resolution
    net, criterion = build_model(params, tasks, classes), build_loss(params, tasks)
    optimizer = torch.optim.Adam([*net.parameters(), *criterion.parameters()], lr=1e-4)
    batch = synthetic_batch(batch_size, resolution, classes)
    size = (resolution, resolution)

    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(batch["rgb"][:1])
    macs = counter.get_total_flops() / 2
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.decode_training(net.encode(batch["rgb"][:1]), size)  # + the auxiliary outputs
    train_macs = counter.get_total_flops() / 2

    net.train()
    times = []
    for step in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        decoded = net.decode_training(net.encode(batch["rgb"]), size)
        sums = criterion.task_losses(decoded.outputs, batch)
        loss = criterion.combine({task: value.mean() for task, value in sums.items()})
        if decoded.auxiliary:
            loss = loss + criterion.combine_auxiliary(decoded, criterion.auxiliary_losses(decoded, batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return {
        "parameters_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 3),
        "gmacs_per_image": round(macs / 1e9, 4),
        "train_gmacs_per_image": round(train_macs / 1e9, 4),
        "step_seconds": round(statistics.median(times), 4),
        "auxiliary_losses": len(net.auxiliary_names),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per architecture")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="params override")
    parser.add_argument("--out", help="also write the full results (JSON) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = {name: measure(name, args.overrides, args.steps, args.batch_size) for name in ARCHITECTURES}
    results: dict[str, object] = {"batch_size": args.batch_size, "steps": args.steps}
    for name, row in rows.items():
        results |= {f"{name}_{key}": value for key, value in row.items()}
    for name in ARCHITECTURES[1:]:
        row, shared = rows[name], rows["shared"]
        results[f"{name}_vs_shared_step"] = round(row["step_seconds"] / shared["step_seconds"], 3)
        results[f"{name}_vs_shared_macs"] = round(row["gmacs_per_image"] / shared["gmacs_per_image"], 3)
    results["overrides"] = " ".join(args.overrides)
    report("architectures", results, args.out)


if __name__ == "__main__":
    main()
