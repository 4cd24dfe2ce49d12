"""Rooms generation speed (samples/s, one process) at several resolutions, without and with the
map tasks the renderer draws (texture and occlusion edges, reshading), measured in one run.

python -m bench.bench_rooms --count 200 --resolutions 64 128
"""

from __future__ import annotations

import argparse

from bench._common import report, timed
from pipeline.data.rooms import ROOM_MAPS, render_room


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--out")
    args = parser.parse_args()
    results = {}
    for resolution in args.resolutions:
        for label, maps in (("", ()), ("_maps", ROOM_MAPS)):
            render_room(0, 0, resolution, maps)  # warm-up
            seconds, _ = timed(
                lambda r=resolution, m=maps: [render_room(0, i, r, m) for i in range(args.count)]
            )
            results[f"{resolution}px{label}"] = {
                "samples": args.count,
                "seconds": round(seconds, 3),
                "samples_per_s": round(args.count / seconds, 1),
            }
        plain, drawn = results[f"{resolution}px"]["seconds"], results[f"{resolution}px_maps"]["seconds"]
        results[f"{resolution}px_maps_vs_plain"] = round(drawn / plain, 3)
    report("rooms generation", results, args.out)


if __name__ == "__main__":
    main()
