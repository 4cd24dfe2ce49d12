"""How hard is scene classification on the rooms dataset? Linear probes on simple features.

    python -m bench.rooms_scene_difficulty --train 600 --test 300 --resolution 64

Trains a multinomial logistic regression (full-batch L-BFGS) on (a) the 13-class pixel
histogram of the ground-truth labels and (b) a 4x4x3 colour thumbnail of the RGB image, and
reports test accuracy against chance (1/6). Learnable-but-not-trivial means well above chance
and well below 100 %.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench._common import report
from pipeline.data.rooms import SCENE_TYPES, RoomsSource


def features(source: RoomsSource, ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    histograms, thumbnails, scenes = [], [], []
    for item in ids:
        sample = source.load(item)
        histograms.append(np.bincount(sample.seg.ravel(), minlength=13)[:13] / sample.seg.size)
        size = sample.rgb.shape[0] // 4
        thumb = sample.rgb.reshape(4, size, 4, size, 3).mean(axis=(1, 3)) / 255.0
        thumbnails.append(thumb.ravel())
        scenes.append(sample.scene)
    return np.array(histograms), np.array(thumbnails), np.array(scenes)


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of an L2-regularised logistic regression on standardised features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x = torch.tensor((train_x - mean) / std, dtype=torch.float64)
    y = torch.tensor(train_y)
    layer = torch.nn.Linear(x.shape[1], len(SCENE_TYPES)).double()
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=500)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y) + 1e-3 * layer.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    test = torch.tensor((test_x - mean) / std, dtype=torch.float64)
    return float((layer(test).argmax(1).numpy() == test_y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.manual_seed(0)
    source = RoomsSource(resolution=args.resolution, seed=0, train=args.train, val=1, test=args.test)
    splits = source.split_ids()
    train_h, train_t, train_y = features(source, list(splits["train"]))
    test_h, test_t, test_y = features(source, list(splits["test"]))
    report(
        "rooms scene-type difficulty (linear probes)",
        {
            "train": args.train,
            "test": args.test,
            "chance": round(1 / len(SCENE_TYPES), 3),
            "accuracy_label_histogram": round(probe_accuracy(train_h, train_y, test_h, test_y), 3),
            "accuracy_rgb_thumbnail": round(probe_accuracy(train_t, train_y, test_t, test_y), 3),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
