"""The ``synthesize`` stage: scene-labelled images from a generator checkpoint, written as shards.

Output folder ``synthesize.out/<name>/``::

    synthetic-000000.tar ...   rgb.png, scene.cls and meta.json per sample (no pixel labels)
    manifest.parquet           one row per sample (split "synthetic")
    summary.json               scene names, counts (same shape as the real set's summary)
    provenance.json            checkpoint sha256 and step, seed, params, count per scene, version, the
                               generator's training params and evaluation, the real shards' hash

A guided MGM checkpoint (``train_mgm``'s ``generator.pt``) pairs each synthetic label with a seeded
real training image of that scene and feeds ``guide(z, E(x))`` to G; the pairing and each sample's
``guide_key`` are recorded (:mod:`pipeline.guidance`).

The same checkpoint, seed and params give byte-identical files: latents come from a private
generator seeded by ``synthesize.seed``, labels from a seeded permutation, and the writer is the
deterministic shard writer of the ``shard`` stage. The set is built in a temporary folder and moved
into place when complete; a folder holding a *different* version (another checkpoint, seed or
params) is replaced only with ``--force``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Full, Queue
from typing import Any

import numpy as np
import torch

from pipeline import __version__
from pipeline.atomic import atomic_output_dir, write_json_atomic
from pipeline.config import Params, params_to_dict
from pipeline.data.manifest import MANIFEST_NAME, write_manifest
from pipeline.data.reader import read_summary, shard_resolution
from pipeline.data.schema import Sample, validate_sample
from pipeline.data.sharding import SUMMARY_NAME, _SplitStats, shard_bounds, write_split
from pipeline.errors import OutputExistsError, ParamsError
from pipeline.generators import allocate_labels, fixed_latents, real_label_counts, sagan_config, to_uint8
from pipeline.git_state import git_state
from pipeline.guidance import keys_sha256, load_synthesis_generator
from pipeline.hashing import file_sha256, shard_set_fingerprint
from pipeline.runtime import select_device

SPLIT = "synthetic"
PROVENANCE_NAME = "provenance.json"
WRITER_ID = "mgm-pipeline synthesize"


def synthetic_count(params: Params, real_train_images: int) -> int:
    """``synthesize.count``, or ``count_relative`` x the number of real training images (at least 1)."""
    synth = params.synthesize
    if synth.count is not None:
        return synth.count
    return max(1, round(synth.count_relative * real_train_images))


def label_weights(params: Params, scene_names: list[str], real_counts: np.ndarray) -> np.ndarray:
    """Weight per scene class: the real train distribution or uniform, zero outside ``scenes``."""
    synth = params.synthesize
    weights = real_counts.astype(np.float64) if synth.labels == "real" else np.ones(len(scene_names))
    if synth.scenes is not None:
        unknown = [name for name in synth.scenes if name not in scene_names]
        if unknown or not synth.scenes:
            raise ParamsError(
                f"synthesize.scenes: unknown scene label(s) {unknown or '(empty list)'}; "
                f"known: {', '.join(scene_names)}"
            )
        keep = np.array([name in synth.scenes for name in scene_names])
        weights = np.where(keep, weights, 0.0)
    if weights.sum() <= 0:
        raise ParamsError("synthesize.scenes / labels: the chosen scenes have no real training images")
    return weights


def dataset_version(identity: dict[str, Any]) -> str:
    """A short hash naming one dataset version (checkpoint, seed, params)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def check_version(target: Path, version: str, force: bool) -> None:
    """Refuse to replace a complete set of another version unless ``force``."""
    provenance = target / PROVENANCE_NAME
    if force or not provenance.is_file():
        return
    try:
        recorded = json.loads(provenance.read_text())
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict) or recorded.get("writer") != WRITER_ID or "version" not in recorded:
        raise OutputExistsError(
            f"{target} holds a {PROVENANCE_NAME} that `mgm synthesize` did not write (no version in it): "
            "move the folder away, choose another synthesize.name, or pass --force to replace it"
        )
    if recorded["version"] != version:
        raise OutputExistsError(
            f"{target} holds synthetic dataset version {recorded['version']} and these params make version "
            f"{version}: pass --force (or set synthesize.force=true) to replace it, or choose another "
            "synthesize.name"
        )


def _generated_samples(
    generator: torch.nn.Module,
    latents: torch.Tensor,
    labels: np.ndarray,
    batch_size: int,
    device: torch.device,
    meta: dict[str, Any],
    scene_names: list[str],
    guide_keys: list[str] | None = None,
) -> Iterator[Sample]:
    """Samples in order; G runs in a background thread one batch ahead of the writer."""
    queue: Queue = Queue(maxsize=2)
    stop = threading.Event()
    label_tensor = torch.from_numpy(labels)

    def hand_over(item: Any) -> None:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return
            except Full:
                continue

    def produce() -> None:
        try:
            with torch.no_grad():
                for start in range(0, len(labels), batch_size):
                    if stop.is_set():
                        return
                    z = latents[start : start + batch_size].to(device)
                    y = label_tensor[start : start + batch_size].to(device)
                    hand_over((start, to_uint8(generator(z, y))))
            hand_over(None)
        except BaseException as err:  # the consumer re-raises it
            hand_over(err)

    worker = threading.Thread(target=produce, name="synthesize-generator", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            start, images = item
            for offset, image in enumerate(images):
                index = start + offset
                key = f"syn{index:07d}"
                scene = int(labels[index])
                extra = {"guide_key": guide_keys[index]} if guide_keys is not None else {}
                yield Sample(
                    key=key,
                    rgb=image,
                    scene=scene,
                    meta={**meta, "id": key, "index": index, "scene_name": scene_names[scene], **extra},
                )
    finally:
        stop.set()
        worker.join()


def synthesize(params: Params, *, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the ``synthesize`` stage; return the provenance written beside the shards."""
    synth = params.synthesize
    real = Path(params.shard.out)
    summary = read_summary(real)
    scene_names = list(summary["scene_names"])
    config = sagan_config(params, len(scene_names), shard_resolution(summary, real))
    device = select_device(params.runtime.device)
    generator, checkpoint, guidance = load_synthesis_generator(synth.checkpoint, config, device)
    if list(checkpoint.get("scene_names", scene_names)) != scene_names:
        raise ParamsError(
            f"synthesize.checkpoint: {synth.checkpoint} was trained on scenes "
            f"{checkpoint.get('scene_names')}, the real shards in {real} have {scene_names}"
        )
    real_counts = real_label_counts(real)
    count = synthetic_count(params, int(summary["splits"]["train"]["samples"]))
    labels = allocate_labels(label_weights(params, scene_names, real_counts), count, synth.seed)
    latents = fixed_latents(count, config.latent_dim, synth.seed)
    guide_keys, guide = None, None
    if guidance is not None:
        latents, guide_keys = guidance.latents(latents, labels, real, synth.seed, synth.batch_size, device)
        guide = {
            **guidance.provenance(synth.seed),
            "keys_sha256": keys_sha256(guide_keys),
            "distinct_images": len(set(guide_keys)),
            "real_manifest_sha256": file_sha256(real / MANIFEST_NAME),
        }

    checkpoint_sha = file_sha256(synth.checkpoint)
    settings = {key: value for key, value in params_to_dict(params)["synthesize"].items() if key != "force"}
    identity = {
        "checkpoint_sha256": checkpoint_sha,
        # what decides the images; not where they are written or read from (the hashes cover that)
        "synthesize": {
            k: v
            for k, v in settings.items()
            if k not in ("fid_split", "fid_extractor", "out", "name", "checkpoint")
        },
        "sagan": config.as_dict(),
        "real_train_scene_counts": [int(n) for n in real_counts],
    }
    if guide is not None:
        identity["guide"] = guide
    version = dataset_version(identity)
    target = Path(synth.out) / synth.name
    check_version(target, version, force or synth.force)

    per_scene = np.bincount(labels, minlength=len(scene_names))
    provenance = {
        "writer": WRITER_ID,
        "version": version,
        "pipeline_version": __version__,
        "checkpoint": {"path": synth.checkpoint, "sha256": checkpoint_sha, "step": int(checkpoint["step"])},
        "seed": synth.seed,
        "count": count,
        "count_per_scene": {name: int(n) for name, n in zip(scene_names, per_scene)},
        "scene_names": scene_names,
        "params": {"synthesize": settings, "sagan": config.as_dict(), "data": params_to_dict(params)["data"]},
        "real_shards": {"path": str(real), "content_sha256": shard_set_fingerprint(real)},
        "git": git_state(),  # the code that wrote this set (None outside a git work tree)
        # what the generator is: its training params and, for a train_gan best.pt, how it scored
        "generator": {
            "train": (checkpoint.get("config") or {}).get("train"),
            "evaluation": checkpoint.get("evaluation"),
        },
    }
    if guide is not None:
        provenance["guide"] = guide
    meta = {"source": "synthetic", "generator_step": int(checkpoint["step"]), "version": version}
    stats = _SplitStats(scene_names, num_classes=0)

    def check(sample: Sample) -> Sample:
        return validate_sample(
            sample, num_classes=1, num_scenes=len(scene_names), resolution=config.resolution, dense=False
        )

    with atomic_output_dir(target, PROVENANCE_NAME, writer=WRITER_ID, force=force or synth.force) as folder:
        bounds = shard_bounds(count, synth.samples_per_shard, synth.min_shards)
        samples = _generated_samples(
            generator, latents, labels, synth.batch_size, device, meta, scene_names, guide_keys
        )
        rows = write_split(SPLIT, samples, count, folder, bounds, check, stats, progress)
        write_manifest(rows, folder / MANIFEST_NAME)
        write_json_atomic(folder / SUMMARY_NAME, _summary(params, scene_names, summary, stats, len(bounds)))
        write_json_atomic(folder / PROVENANCE_NAME, provenance)
    return provenance


def _summary(
    params: Params, scene_names: list[str], real_summary: dict[str, Any], stats: _SplitStats, shards: int
) -> dict[str, Any]:
    """A summary shaped like the real set's, so readers find names and counts the same way."""
    return {
        "writer": WRITER_ID,
        "version": __version__,
        "source": "synthetic",
        "resolution": shard_resolution(real_summary, params.shard.out),
        "class_names": list(real_summary.get("class_names", [])),
        "scene_names": scene_names,
        "splits": {
            SPLIT: {
                "samples": int(stats.scene_counts.sum()),
                "shards": shards,
                "scenes": {name: int(n) for name, n in zip(scene_names, stats.scene_counts) if n},
            }
        },
    }
