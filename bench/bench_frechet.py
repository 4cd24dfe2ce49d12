"""Fréchet distance seconds per comparison: the small-n route against clean-fid's matrix square root.

    python -m bench.bench_frechet --count 500 --dim 2048

Both take the same ``--count`` x ``--dim`` feature sets (random, correlated features; the cost does
not depend on their values) and must agree; ``ratio`` is scipy's seconds over the small route's.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench._common import report, timed
from pipeline.metrics.fid import frechet_distance_small_n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500, help="images per set")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimensions (Inception: 2048)")
    parser.add_argument("--out")
    args = parser.parse_args()
    from cleanfid import fid as cleanfid

    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(args.dim, args.dim)) / np.sqrt(args.dim)
    a = rng.normal(size=(args.count, args.dim)) @ mixing
    b = rng.normal(0.2, 1.1, size=(args.count, args.dim)) @ mixing
    small_s, small = timed(lambda: frechet_distance_small_n(a, b))
    scipy_s, reference = timed(lambda: float(cleanfid.fid_from_feats(a, b)))
    report(
        "frechet",
        {
            "count": args.count,
            "dim": args.dim,
            "frechet_seconds": round(small_s, 4),
            "scipy_seconds": round(scipy_s, 3),
            "ratio": round(scipy_s / small_s, 1),
            "relative_difference": abs(small - reference) / abs(reference),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
