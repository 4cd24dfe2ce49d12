"""Peak memory of the ``shard`` stage for two dataset sizes: streaming means it does not grow.

    python -m bench.bench_shard_memory --counts 10000 40000 --resolution 32

Each size runs `python -m stages.shard` in its own process; a sampler sums the resident memory
of that process and its worker processes every 50 ms and keeps the peak.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench._common import report


def peak_rss_of_tree(command: list[str]) -> tuple[float, float]:
    """(peak resident MB of the process tree, seconds) of running ``command``."""
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with {process.returncode}")
    return peak / 2**20, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[10000, 40000])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    results = {}
    for count in args.counts:
        with tempfile.TemporaryDirectory() as tmp:
            command = [
                sys.executable,
                "-m",
                "stages.shard",
                "--quiet",
                "--metrics",
                str(Path(tmp) / "m.json"),
            ]
            for setting in (
                f"shard.out={Path(tmp) / 'real'}",
                f"data.resolution={args.resolution}",
                f"data.rooms.train={count}",
                "data.rooms.val=10",
                "data.rooms.test=10",
                f"shard.workers={args.workers}",
            ):
                command += ["--set", setting]
            peak_mb, seconds = peak_rss_of_tree(command)
        results[str(count)] = {"peak_rss_MB": round(peak_mb, 1), "seconds": round(seconds, 1)}
    first, last = (results[str(c)]["peak_rss_MB"] for c in (args.counts[0], args.counts[-1]))
    results["ratio_peak_last_over_first"] = round(last / first, 3)
    results["ratio"] = results["ratio_peak_last_over_first"]
    report("shard peak memory", results, args.out)


if __name__ == "__main__":
    main()
