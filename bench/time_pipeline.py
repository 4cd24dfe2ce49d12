"""Wall time of ``dvc repro`` per stage, in the DVC project of the current folder.

Runs ``dvc repro`` (arguments after ``--`` are passed on), timestamps each ``Running stage`` line
of its output and prints the seconds each stage took and the total; the last line is the headline
JSON. Start from a fresh clone to time what a new user waits for, e.g. the quickstart:

    mgm profile quickstart && python bench/time_pipeline.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dvc_args", nargs="*", help="passed to dvc repro (after --)")
    args = parser.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    started = time.monotonic()
    marks: list[tuple[str, float]] = []
    with subprocess.Popen(
        ["dvc", "repro", *args.dvc_args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stderr.write(line)
            if line.startswith("Running stage '"):
                marks.append((line.split("'")[1], time.monotonic()))
    total = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"dvc repro failed ({process.returncode})")
    ends = [moment for _, moment in marks[1:]] + [started + total]
    stages = {name: round(end - begin, 1) for (name, begin), end in zip(marks, ends)}
    report("time_pipeline", {"total_seconds": round(total, 1), "stages": len(stages), "per_stage": stages})


if __name__ == "__main__":
    main()
