"""File helpers shared by tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``, keyed by its path relative to ``folder``."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def checkpoint_tensors(value: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a (loaded) checkpoint, keyed by its path of dict keys and list indices."""
    found: dict[str, torch.Tensor] = {}
    if isinstance(value, torch.Tensor):
        found[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            found |= checkpoint_tensors(item, f"{prefix}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= checkpoint_tensors(item, f"{prefix}/{index}")
    return found
