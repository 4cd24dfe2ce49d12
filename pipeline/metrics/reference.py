"""The real side of a generator's evaluation: a held-out reference sample, the floor and the blur rung.

Three sets of ``n`` real images, featurised once and cached by content hash:

* ``reference``: the split the generator is compared with (never trained on, for rooms);
* ``floor``: ``n`` images of another real split. Their distance to the reference is the value a
  perfect generator would get at this ``n`` (FID is biased upwards at small ``n``; KID is not);
* ``blur_half``: the same floor images blurred to half resolution and back, a calibration rung:
  a generator below it draws finer detail than real rooms at half the resolution.

The floor images' features also fit the scene probe, which the reference images score.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipeline.atomic import write_bytes_atomic
from pipeline.data.reader import read_summary
from pipeline.hashing import shard_set_fingerprint
from pipeline.metrics.fid import (
    Extractor,
    MetricsError,
    distances,
    image_features,
    metric_names,
    read_shard_images,
)
from pipeline.metrics.scene_probe import CentroidProbe

CACHE_VERSION = 1  # bump when what a cache file holds changes


def blurred_half(images: np.ndarray) -> np.ndarray:
    """uint8 images down-sampled to half their side (box filter) and back up (bilinear)."""
    side = images.shape[1]
    out = []
    for image in images:
        small = Image.fromarray(image).resize((side // 2, side // 2), Image.BOX)
        out.append(np.asarray(small.resize((side, side), Image.BILINEAR)))
    return np.stack(out)


@dataclass(frozen=True)
class RealReference:
    """Features (``n x D``) and scene labels of the reference and floor images, and the blur rung's."""

    reference: np.ndarray
    reference_scenes: np.ndarray
    floor: np.ndarray
    floor_scenes: np.ndarray
    blur_half: np.ndarray
    extractor: str

    def probe(self, num_classes: int) -> CentroidProbe:
        """The scene probe, fitted on the floor images."""
        return CentroidProbe.fit(self.floor, self.floor_scenes, num_classes)

    def rungs(self, probe: CentroidProbe) -> dict[str, Any]:
        """Floor and blur rung (real vs the reference) and ``probe``'s accuracy (:meth:`probe`) on
        the reference images."""
        fd_name, kd_name = metric_names(self.extractor)
        floor = distances(self.floor, self.reference, self.extractor)
        blur = distances(self.blur_half, self.reference, self.extractor)
        return {
            "n_images": len(self.reference),
            f"floor_{fd_name}": floor[fd_name],
            f"floor_{kd_name}": floor[kd_name],
            f"blur_half_{fd_name}": blur[fd_name],
            f"blur_half_{kd_name}": blur[kd_name],
            "real_scene_acc": probe.accuracy(self.reference, self.reference_scenes),
        }


def check_split_size(folder: str | Path, split: str, count: int, param: str) -> None:
    """Fail before any work when ``split`` of the shard set holds fewer than ``count`` images."""
    available = int(read_summary(folder)["splits"].get(split, {}).get("samples", 0))
    if available < count:
        hint = (
            " (the rooms source renders it: data.rooms.reference; other datasets: use test)"
            if split == "reference"
            else ""
        )
        raise MetricsError(
            f"{param}: split {split!r} of {folder} holds {available} images, fewer than {count} "
            f"(gan.eval_images){hint}; lower gan.eval_images or pick another split"
        )


def cache_key(folder: str | Path, reference_split: str, floor_split: str, count: int, extractor: str) -> str:
    """Content hash naming a cache file: the shards' content, the splits, ``n``, the extractor."""
    identity = {
        "version": CACHE_VERSION,
        "shards": shard_set_fingerprint(folder),
        "reference_split": reference_split,
        "floor_split": floor_split,
        "count": count,
        "extractor": extractor,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def load_real_reference(
    folder: str | Path,
    reference_split: str,
    floor_split: str,
    count: int,
    extractor: Extractor,
    cache_dir: str | Path | None,
    progress: bool = False,
) -> RealReference:
    """The three real feature sets, from ``cache_dir`` when an entry for this content exists."""
    check_split_size(folder, reference_split, count, "gan.reference_split")
    check_split_size(folder, floor_split, count, "gan.floor_split")
    path = None
    if cache_dir is not None:
        key = cache_key(folder, reference_split, floor_split, count, extractor.name)
        path = Path(cache_dir) / "features" / f"{key}.npz"
        if path.is_file():
            try:
                with np.load(path) as stored:
                    return RealReference(**{name: stored[name] for name in _ARRAYS}, extractor=extractor.name)
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is recomputed and replaced
    reference_images, reference_scenes = read_shard_images(folder, reference_split, limit=count)
    floor_images, floor_scenes = read_shard_images(folder, floor_split, limit=count)

    def features(images: np.ndarray, what: str) -> np.ndarray:
        return image_features(images, extractor, progress=progress, description=what).astype(np.float32)

    reference = RealReference(
        reference=features(reference_images, f"{reference_split} features"),
        reference_scenes=reference_scenes,
        floor=features(floor_images, f"{floor_split} features"),
        floor_scenes=floor_scenes,
        blur_half=features(blurred_half(floor_images), f"{floor_split} blurred features"),
        extractor=extractor.name,
    )
    if path is not None:
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(reference, name) for name in _ARRAYS})
        write_bytes_atomic(path, buffer.getvalue())
    return reference


_ARRAYS = ("reference", "reference_scenes", "floor", "floor_scenes", "blur_half")
