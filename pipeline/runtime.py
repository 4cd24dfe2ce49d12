"""Where and how a training stage runs: device, threads, seeding, and DDP under ``torchrun``."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pipeline.errors import ParamsError


@dataclass(frozen=True)
class Runtime:
    """The process's place in a (possibly distributed) run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes outputs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ParamsError(f"device={name!r} but no CUDA GPU is available; use 'cpu' or 'auto'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python and torch (all devices)."""
    random.seed(seed)
    torch.manual_seed(seed)


def start_runtime(device_name: str = "auto", threads: int | None = None) -> Runtime:
    """Set up the device and, under ``torchrun`` (``WORLD_SIZE`` > 1), the process group.

    The backend is NCCL on CUDA and gloo on CPU; each rank uses ``cuda:LOCAL_RANK``.
    """
    if threads:
        torch.set_num_threads(threads)
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    device = select_device(device_name)
    if world_size == 1:
        return Runtime(device=device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return Runtime(device=device, rank=dist.get_rank(), world_size=dist.get_world_size())


def stop_runtime(runtime: Runtime) -> None:
    """Tear down the process group, if any."""
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def runtime_session(device_name: str = "auto", threads: int = 0) -> Iterator[Runtime]:
    """:func:`start_runtime` for the body of a ``with``; on exit the process group is torn down and
    torch's thread count restored, however the body ends (so a test or notebook is left as it was)."""
    previous = torch.get_num_threads()
    runtime = start_runtime(device_name, threads or None)
    try:
        yield runtime
    finally:
        stop_runtime(runtime)
        torch.set_num_threads(previous)


MAX_AUTO_WORKERS = 8


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def loader_workers(setting: int | str, device: torch.device, shards: int, world_size: int = 1) -> int:
    """``runtime.workers`` for a loader over a split of ``shards`` shards: a number as given;
    ``auto`` none on CPU and, on CUDA, one per core beyond the training process's own, at most
    ``MAX_AUTO_WORKERS`` and never more than the shards each rank reads (a reader needs a shard).

    Why none on CPU: there the training process competes with its workers for the same cores, and
    shipping batches between processes cost more than decoding them (docs/benchmarks.md).
    """
    if setting != "auto":
        return int(setting)
    if device.type != "cuda":
        return 0
    spare = usable_cores() // max(world_size, 1) - 1
    return max(0, min(MAX_AUTO_WORKERS, spare, shards // max(world_size, 1)))


def device_flag(setting: bool | str, device: torch.device, name: str) -> bool:
    """``runtime.bf16`` / ``runtime.channels_last``: a boolean as given; ``auto`` on CUDA only (bf16
    also needs a GPU that supports it). On CPU they stay off: fp32 keeps resume bit-exact and metrics
    comparable across machines, and bf16 pays only on CPUs with bf16 units (docs/benchmarks.md)."""
    if setting != "auto":
        return bool(setting)
    if device.type != "cuda":
        return False
    return torch.cuda.is_bf16_supported() if name == "bf16" else True
