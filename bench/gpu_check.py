"""The device check: one short script that measures what a GPU run needs, as JSON.

On a machine with a CUDA GPU and the project installed (``pip install -e .``; nothing else, nothing
downloaded), ``bash bench/gpu_check.sh`` runs it in a few minutes and prints one JSON object on its
last line:

* ``train_mt`` images/s at 128 px through the shard loader and from tensors already on the device,
  fp32 and bf16 + channels_last, with ``torch.compile`` on and off, and the bf16/fp32 loss ratio on
  one fixed batch (metric parity);
* ``train_gan`` G steps/s (with D steps) at the paper profile;
* one MGM joint iteration split by step;
* peak GPU memory of each part.

``--cpu`` is the dry run at toy size on the CPU (32 px, tiny networks, a few steps): it checks the
script end to end where no GPU is, and CI runs it (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import report, time_joint_iterations
from pipeline.config import Params, load_params
from pipeline.data.reader import ShardDataset, collate, read_summary
from pipeline.data.sharding import shard_dataset
from pipeline.inference import to_device
from pipeline.train.builders import autocast_factory, build_loss, build_model, build_optimizer
from pipeline.train.multitask import _Trainable

PAPER_GAN = [
    "gan.g_width=64", "gan.d_width=64", "gan.attention_resolution=32", "gan.g_spectral_norm=true",
    "gan.d_steps=2", "gan.batch_size=32", "gan.diffaugment=[color, translation, cutout]",
]  # fmt: skip
TOY = [
    "model.encoder=halfwidth34", "model.encoder_widths=[8, 8, 16, 16]",
    "model.decoder_channels=[16, 8, 8, 8, 8]",
    "gan.g_width=4", "gan.d_width=4", "gan.latent_dim=16", "gan.batch_size=4", "ssl.dim=8",
    "mgm.refinement_width=8", "mgm.refinement_hidden=16",
]  # fmt: skip


class Profile:
    """Sizes of one check: the GPU run or the CPU dry run."""

    def __init__(self, cpu: bool) -> None:
        self.cpu = cpu
        self.device = torch.device("cpu" if cpu else "cuda")
        self.resolution = 32 if cpu else 128
        self.images = 16 if cpu else 2048  # 64 batches: the loader's prefetch queue is a small part
        self.batch = 4 if cpu else 32
        self.steps = 2 if cpu else 30
        self.warmup = 1 if cpu else 5
        self.workers = 0 if cpu else 4
        self.overrides = TOY if cpu else []
        self.gan = ["gan.batch_size=4"] if cpu else PAPER_GAN


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mb(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def rate(
    step: Callable[[dict], int], batches: list[dict] | DataLoader, device: torch.device, warmup: int
) -> float:
    """Images per second over ``batches`` after ``warmup`` of them."""
    images, started = 0, None
    for index, batch in enumerate(batches):
        if index == warmup:
            synchronize(device)
            started, images = time.perf_counter(), 0
        images += step(batch)
    synchronize(device)
    return images / (time.perf_counter() - started) if started is not None else float("nan")


def train_mt_check(params: Params, shards: Path, profile: Profile) -> dict[str, Any]:
    """train_mt's own step (M + losses + Adam) in each precision, memory layout and compile mode."""
    device, results = profile.device, {}
    classes = len(read_summary(shards)["class_names"])
    dataset = ShardDataset(shards, "train", shuffle=True, seed=0)
    loader = DataLoader(
        dataset, batch_size=profile.batch, num_workers=profile.workers, collate_fn=collate,
        drop_last=True, pin_memory=device.type == "cuda", persistent_workers=profile.workers > 0,
    )  # fmt: skip
    fixed = to_device(collate(list(ShardDataset(shards, "train"))[: profile.batch]), device)
    modes = [("fp32", False, False, False), ("bf16_channels_last", True, True, False)]
    if not profile.cpu:  # compiling on a CPU needs a C toolchain and minutes: the dry run skips it
        modes += [("bf16_channels_last_compiled", True, True, True)]
    losses = {}
    for name, bf16, channels_last, compiled in modes:
        torch.manual_seed(0)
        net = build_model(params, params.model.tasks, classes).to(device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        trainable = _Trainable(net, build_loss(params, params.model.tasks), autocast_factory(device, bf16))
        optimizer = build_optimizer(params, list(trainable.parameters()))
        forward = torch.compile(trainable) if compiled else trainable
        with torch.no_grad():
            losses[name] = float(forward(to_device(fixed, device, channels_last))[0])

        def step(batch: dict, forward=forward, optimizer=optimizer, channels_last=channels_last) -> int:
            loss, _ = forward(to_device(batch, device, channels_last))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return len(batch["rgb"])

        reset_peak(device)
        in_memory = [fixed] * (profile.warmup + profile.steps)
        results[f"{name}_memory_images_per_s"] = round(rate(step, in_memory, device, profile.warmup), 1)
        results[f"{name}_loader_images_per_s"] = round(rate(step, loader, device, profile.warmup), 1)
        results[f"{name}_peak_mb"] = peak_mb(device)
    results["bf16_over_fp32_loss"] = round(losses["bf16_channels_last"] / losses["fp32"], 4)
    results["ratio_loader_over_memory_bf16"] = round(
        results["bf16_channels_last_loader_images_per_s"] / results["bf16_channels_last_memory_images_per_s"],
        3,
    )
    return results


def train_gan_check(shards: Path, profile: Profile) -> dict[str, Any]:
    """train_gan's step at the paper profile (toy widths in the dry run)."""
    from pipeline.generators import sagan_config
    from pipeline.train.gan.batches import RealBatches
    from pipeline.train.gan.loop import build_models, train_step

    params = load_params(None, [f"shard.out={shards}", *profile.overrides, *profile.gan])
    torch.manual_seed(0)
    summary = read_summary(shards)
    config = sagan_config(params, len(summary["scene_names"]), profile.resolution)
    models = build_models(config, params.gan, profile.device)
    batches = RealBatches(shards, ["train"], params.gan.batch_size, 0, 0)
    reset_peak(profile.device)
    seconds = []
    for step in range(profile.warmup + profile.steps):
        synchronize(profile.device)
        started = time.perf_counter()
        train_step(models, batches, params.gan, step, profile.device)
        synchronize(profile.device)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds[profile.warmup :])
    return {
        "g_steps_per_s": round(1 / median, 2),
        "images_shown_per_s": round(params.gan.batch_size * params.gan.d_steps / median, 1),
        "peak_mb": peak_mb(profile.device),
        "widths": [params.gan.g_width, params.gan.d_width],
    }


def mgm_check(params: Params, shards: Path, root: Path, profile: Profile) -> dict[str, Any]:
    """One joint MGM iteration split by step (bench/bench_mgm_iteration.py's measurement)."""
    from pipeline.train.gan.loop import train_gan
    from pipeline.train.mgm_models import build_joint_models, build_optimizers

    gan_params = load_params(None, [
        f"shard.out={shards}", *profile.overrides, *profile.gan, "gan.steps=1", "gan.fid_extractor=tiny",
        "gan.eval_images=2", "gan.standing_batches=1", f"gan.out={root / 'gan'}", f"gan.plots={root / 'gan'}",
        f"runtime.device={profile.device.type}", f"mgm.gan_checkpoint={root / 'gan' / 'best.pt'}",
        f"mgm.batch_size={profile.batch}",
    ])  # fmt: skip
    train_gan(gan_params, progress=False)
    summary = read_summary(shards)
    models = build_joint_models(
        gan_params, len(summary["class_names"]), summary["scene_names"], profile.resolution, profile.device
    )
    optimizers = build_optimizers(gan_params, models)
    batch = to_device(collate(list(ShardDataset(shards, "train"))[: profile.batch]), profile.device)
    reset_peak(profile.device)
    per_step, _ = time_joint_iterations(
        models, optimizers, batch, gan_params, profile.resolution, profile.warmup, profile.steps
    )
    medians = {step: statistics.median(values) * 1000 for step, values in per_step.items()}
    total = sum(medians.values())
    return {
        "median_ms_per_step": {step: round(ms, 1) for step, ms in medians.items()},
        "ms_per_iteration": round(total, 1),
        "ratio_iteration_over_dense_step": round(total / medians["dense"], 2),
        "peak_mb": peak_mb(profile.device),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="dry run at toy size on the CPU")
    parser.add_argument("--out", help="also write the full JSON here")
    args = parser.parse_args(argv)
    profile = Profile(args.cpu)
    if not args.cpu and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is visible (torch.cuda.is_available() is False); "
            "--cpu runs the dry run"
        )
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = root / "real"
        params = load_params(None, [
            f"shard.out={shards}", f"data.resolution={profile.resolution}",
            f"data.rooms.train={profile.images}", "data.rooms.val=2", "data.rooms.test=2",
            "data.rooms.reference=2", "shard.samples_per_shard=64", f"shard.workers={0 if args.cpu else 8}",
            f"runtime.device={profile.device.type}", *profile.overrides,
        ])  # fmt: skip
        shard_dataset(params, progress=False)
        results: dict[str, Any] = {
            "device": torch.cuda.get_device_name(0) if not args.cpu else "cpu (dry run)",
            "resolution": profile.resolution,
            "train_mt": train_mt_check(params, shards, profile),
            "train_gan": train_gan_check(shards, profile),
            "mgm_iteration": mgm_check(params, shards, root, profile),
        }
    results["seconds"] = round(time.perf_counter() - started, 1)
    mt = results["train_mt"]
    results["ratio"] = mt["ratio_loader_over_memory_bf16"]  # the headline: does the loader keep up?
    results["bf16_over_fp32_loss"] = mt["bf16_over_fp32_loss"]
    results["gan_g_steps_per_s"] = results["train_gan"]["g_steps_per_s"]
    results["mgm_ratio_iteration_over_dense"] = results["mgm_iteration"]["ratio_iteration_over_dense_step"]
    report("gpu_check", results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
