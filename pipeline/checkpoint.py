"""Checkpoints that load with ``torch.load(weights_only=True)`` and resume bit-exactly on CPU.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts: model and optimizer
state dicts, the scheduler state, the step/epoch, the run history and the RNG states of Python and
torch (CPU and CUDA). It is written to a temporary name and renamed, so a killed run never leaves
a half-written checkpoint that could be loaded; equal contents give equal bytes (so a hash of a
checkpoint names what it holds, not when or where it was written).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch

from pipeline.atomic import temporary_sibling
from pipeline.errors import PipelineError


class CheckpointError(PipelineError):
    """A checkpoint is missing, unreadable, or does not match the params (the message says which)."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Save ``state`` atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = temporary_sibling(path)
    try:
        # A stream, not a path: torch.save names the archive's root folder after a path it is given,
        # and the random temporary name would make equal checkpoints differ byte for byte.
        with open(tmp_name, "wb") as stream:
            torch.save(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {err}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dict")
    return state


def load_state_strict(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict`` that reports missing/unexpected keys and shape mismatches by name."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = [
        f"{name}: checkpoint {tuple(state_dict[name].shape)} vs model {tuple(own[name].shape)}"
        for name in sorted(set(own) & set(state_dict))
        if own[name].shape != state_dict[name].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if mismatched:
        problems.append("shape mismatch " + "; ".join(mismatched[:5]))
    if problems:
        detail = ", ".join(problems)
        raise CheckpointError(f"{where} does not match the model built from the params: {detail}")
    module.load_state_dict(state_dict)


def rng_state() -> dict[str, Any]:
    """RNG states of Python and torch (CPU, and CUDA when available), weights-only serialisable."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
