"""Rooms generation speed (samples/s, one process) at several resolutions.

python -m bench.bench_rooms --count 200 --resolutions 64 128
"""

from __future__ import annotations

import argparse

from bench._common import report, timed
from pipeline.data.rooms import render_room


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--out")
    args = parser.parse_args()
    results = {}
    for resolution in args.resolutions:
        render_room(0, 0, resolution)  # warm-up
        seconds, _ = timed(lambda r=resolution: [render_room(0, i, r) for i in range(args.count)])
        results[f"{resolution}px"] = {
            "samples": args.count,
            "seconds": round(seconds, 3),
            "samples_per_s": round(args.count / seconds, 1),
        }
    report("rooms generation", results, args.out)


if __name__ == "__main__":
    main()
