"""The guided generator of an MGM checkpoint, for ``synthesize``.

A guided checkpoint makes synthetic image ``i`` as ``G(guide(z_i, E(x_i)), y_i)``, where ``x_i`` is a
real training image of scene ``y_i`` drawn by a seeded generator (:func:`pair_guide_images`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.checkpoint import CheckpointError, load_checkpoint, load_state_strict
from pipeline.data.manifest import read_manifest
from pipeline.data.reader import ShardDataset
from pipeline.errors import ParamsError
from pipeline.generators import CHECKPOINT_KIND, config_differences, load_generator
from pipeline.models.guided import LatentGuide, widen_generator_input
from pipeline.models.multitask import MultiTaskNet, build_multitask_net
from pipeline.models.sagan import Generator, SaganConfig

PAIRING = "each label paired with a real training image of that scene, drawn by a seeded generator"


@dataclass
class Guidance:
    """A guided checkpoint's encoder and latent guide (eval mode) for synthesis."""

    net: MultiTaskNet
    guide: LatentGuide
    where: str

    def provenance(self, seed: int) -> dict[str, Any]:
        return {"mode": self.guide.mode, "pairing": PAIRING, "seed": seed}

    @torch.no_grad()
    def latents(
        self,
        latents: Tensor,
        labels: np.ndarray,
        real_folder: str | Path,
        seed: int,
        batch_size: int,
        device: torch.device,
    ) -> tuple[Tensor, list[str]]:
        """G's inputs ``guide(z_i, E(x_i))`` (on the CPU) and the key of each guide image ``x_i``."""
        keys = pair_guide_images(real_folder, labels, seed)
        features = guide_features(self.net, real_folder, sorted(set(keys)), batch_size, device)
        out = []
        for start in range(0, len(keys), batch_size):
            chunk = keys[start : start + batch_size]
            feats = torch.stack([features[key] for key in chunk]).to(device)
            out.append(self.guide(latents[start : start + len(chunk)].to(device), feats).cpu())
        return torch.cat(out), keys


def pair_guide_images(real_folder: str | Path, labels: np.ndarray, seed: int) -> list[str]:
    """For each scene label, the key of a real ``train`` image of that scene (seeded, with repeats)."""
    table = read_manifest(real_folder).to_pydict()
    by_scene: dict[int, list[str]] = {}
    for key, split, scene in zip(table["key"], table["split"], table["scene"]):
        if split == "train":
            by_scene.setdefault(int(scene), []).append(key)
    rng = np.random.default_rng([seed, 0x6D676D])
    keys = []
    for label in labels.tolist():
        pool = by_scene.get(int(label))
        if not pool:
            raise ParamsError(
                f"synthesize: scene class {label} has no real training image in {real_folder} to guide "
                "the MGM generator: restrict synthesize.scenes or use synthesize.labels=real"
            )
        keys.append(pool[int(rng.integers(len(pool)))])
    return keys


@torch.no_grad()
def guide_features(
    net: MultiTaskNet, real_folder: str | Path, keys: Sequence[str], batch_size: int, device: torch.device
) -> dict[str, Tensor]:
    """Pooled encoder features (eval mode, on the CPU) of the real train images named by ``keys``."""
    wanted, found = set(keys), {}
    pending_keys: list[str] = []
    pending: list[Tensor] = []

    def flush() -> None:
        feats = net.features(torch.stack(pending).to(device)).float().cpu()
        found.update(zip(pending_keys, feats))
        pending_keys.clear()
        pending.clear()

    for item in ShardDataset(real_folder, "train"):
        if item["key"] in wanted:
            pending_keys.append(item["key"])
            pending.append(item["rgb"])
            if len(pending) == batch_size:
                flush()
    if pending:
        flush()
    missing = sorted(wanted - set(found))
    if missing:
        raise CheckpointError(
            f"{real_folder}: guide images {missing[:3]} are in the manifest but not the shards"
        )
    return found


def load_synthesis_generator(
    path: str | Path, expected: SaganConfig, device: torch.device
) -> tuple[Generator, dict[str, Any], Guidance | None]:
    """The EMA generator of a ``train_gan`` or MGM checkpoint (eval), the checkpoint, and its guidance.

    A plain checkpoint goes through :func:`~pipeline.generators.load_generator`; a guided one gets
    G's first layer widened for a "concat" guide and M rebuilt from ``model_config``.
    """
    state = load_checkpoint(path)
    if state.get("kind") != CHECKPOINT_KIND or "guide" not in state:
        generator, state = load_generator(path, expected, device)
        return generator, state, None
    stored = state["config"]["sagan"]
    problems = config_differences(stored, expected.as_dict())
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not match the params ({'; '.join(problems)}): "
            "set gan.* to the checkpoint's values (and shard at its resolution) or pick another checkpoint"
        )
    guide = LatentGuide(**state["guide"]["config"])
    load_state_strict(guide, state["guide"]["state"], f"checkpoint {path} (guide)")
    generator = widen_generator_input(Generator(SaganConfig(**stored)), guide.extra_inputs)
    load_state_strict(generator, state["generator_ema"], f"checkpoint {path} (generator_ema)")
    config = state["model_config"]
    # Checkpoints from before model.architecture existed hold no architecture keys: shared M.
    net = build_multitask_net(state["tasks"], state["num_classes"], **config)
    load_state_strict(net, state["model"], f"checkpoint {path} (model)")
    guidance = Guidance(net.to(device).eval(), guide.to(device).eval(), str(path))
    return generator.to(device).eval(), state, guidance


def keys_sha256(keys: Sequence[str]) -> str:
    """Hash of the ordered guide-image keys (recorded in provenance.json)."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()
