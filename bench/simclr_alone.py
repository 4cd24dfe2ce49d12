"""Does SimCLR learn on M's encoder at all? The SSL loss alone (no dense, R or GAN steps) on the
labelled train images, for each setting of SimCLR's views given on the command line.

Each ``--views`` entry is ``crop_min,jitter,blur_p``: the crop's least area, the colour-jitter
strength (brightness = contrast = saturation = s, hue = s / 4, p = ``ssl.jitter_p``) and the blur
probability; the rest comes from params.yaml. Chance for NT-Xent is ln(2B - 1) (3.43 at batch 16).

    python bench/simclr_alone.py --steps 300 --views 0.2,0.8,0.5 0.5,0.4,0.5 1.0,0.0,0.5

The last line is one JSON object: ``{"chance": ..., "runs": [{"views": ..., "first50": ...,
"last50": ...}]}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import load_params
from pipeline.data.reader import ShardDataset, read_summary
from pipeline.data.sharding import shard_dataset
from pipeline.train.builders import build_model
from pipeline.train.ssl import build_ssl_head, build_views, ssl_loss


def train_images(work: Path, settings: Sequence[str]) -> torch.Tensor:
    params = load_params("params.yaml", [f"shard.out={work / 'shards'}", *settings])
    if not (work / "shards" / "summary.json").is_file():
        shard_dataset(params, progress=False)
    return torch.stack([item["rgb"] for item in ShardDataset(work / "shards", "train", dense=())])


def run(args: argparse.Namespace, views: str, images: torch.Tensor) -> dict[str, float | str]:
    crop_min, strength, blur_p = (float(value) for value in views.split(","))
    params = load_params("params.yaml", args.set)
    ssl = params.ssl.model_copy(
        update={"crop_scale": (crop_min, 1.0), "jitter": (strength,) * 3 + (strength / 4,), "blur_p": blur_p}
    )
    torch.manual_seed(args.seed)
    classes = len(read_summary(args.work / "shards")["class_names"])
    net = build_model(params, list(params.model.tasks), classes)
    head = build_ssl_head("simclr", net.feature_channels, images.shape[-1], ssl.dim, hidden=ssl.hidden)
    augment = build_views(ssl, images.shape[-1], generator=torch.Generator().manual_seed(args.seed))
    trained = [*net.encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(trained, lr=args.lr, weight_decay=1e-4)
    order = torch.Generator().manual_seed(args.seed)
    losses: list[float] = []
    started = time.perf_counter()
    for step in range(args.steps):
        batch = images[torch.randint(0, len(images), (args.batch,), generator=order)]
        loss = ssl_loss("simclr", net, head, batch, augment, ssl.temperature)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
        if (step + 1) % 50 == 0:
            print(f"views {views}: step {step + 1} loss {sum(losses[-50:]) / 50:.3f}", flush=True)
    window = min(50, len(losses))
    return {
        "views": views,
        "first50": round(sum(losses[:window]) / window, 4),
        "last50": round(sum(losses[-window:]) / window, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", nargs="+", default=["0.2,0.8,0.5", "0.5,0.4,0.5"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("bench/out/simclr_alone"))
    parser.add_argument("--set", action="append", default=["data.label_fraction=0.5"], help="params override")
    args = parser.parse_args(argv)
    images = train_images(args.work, args.set)
    print(f"{len(images)} train images at {images.shape[-1]} px", flush=True)
    runs = [run(args, views, images) for views in args.views]
    print(json.dumps({"chance": round(math.log(2 * args.batch - 1), 4), "batch": args.batch, "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
