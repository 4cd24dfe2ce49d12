"""SimCLR views of one batch: ``BatchAugment`` (kornia, batched) against torchvision v2 per sample.

    python -m bench.bench_ssl_views --batch 32 --resolution 64 --repeats 20

Both draw the same transforms (random resized crop to the input side with scale 0.2-1, flip,
colour jitter 0.8/0.8/0.8/0.2 with p 0.8, grayscale p 0.2, Gaussian blur p 0.5) independently per
sample; the torchvision baseline is the per-sample ``v2.Compose`` loop the project used before
(what a batch costs when each image is transformed on its own). Medians of ``--repeats`` calls on
one batch, forward only and forward + backward to the input (the views are differentiable, since
SimCLR on synthetic images back-propagates into G). The last line: ``{"ratio": baseline / kornia}``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor
from torchvision.transforms import v2

from bench._common import report
from pipeline.train.ssl import BatchAugment, blur_kernel_size


def torchvision_per_sample(size: int) -> Callable[[Tensor], Tensor]:
    """The baseline: one ``v2.Compose`` call per image (hue jitter left out: v2's hue kernel works
    in place and breaks autograd, so the old code swapped in an out-of-place one of equal cost)."""
    transform = v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.8, 0.8, 0.8)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            v2.RandomApply([v2.GaussianBlur(blur_kernel_size(size), sigma=(0.1, 2.0))], p=0.5),
        ]
    )
    return lambda images: torch.stack([transform(image) for image in images]).clamp(0.0, 1.0)


def median_ms(function: Callable[[Tensor], Tensor], images: Tensor, repeats: int, backward: bool) -> float:
    times = []
    for index in range(repeats + 2):
        source = images.clone().requires_grad_(backward)
        started = time.perf_counter()
        views = function(source)
        if backward:
            views.sum().backward()
        if index >= 2:  # two warm-up calls
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.rand(args.batch, 3, args.resolution, args.resolution)
    kornia_views = BatchAugment(args.resolution)
    baseline = torchvision_per_sample(args.resolution)
    results = {}
    for name, backward in (("forward", False), ("forward_backward", True)):
        results[f"kornia_{name}_ms"] = round(median_ms(kornia_views, images, args.repeats, backward), 1)
        results[f"torchvision_{name}_ms"] = round(median_ms(baseline, images, args.repeats, backward), 1)
    report(
        "SimCLR views: kornia batched vs torchvision per sample",
        {
            "batch": args.batch,
            "resolution": args.resolution,
            "repeats": args.repeats,
            **results,
            "ratio_forward": round(results["torchvision_forward_ms"] / results["kornia_forward_ms"], 2),
            "ratio": round(
                results["torchvision_forward_backward_ms"] / results["kornia_forward_backward_ms"], 2
            ),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
