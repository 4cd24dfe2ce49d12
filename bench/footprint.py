"""Bytes a `dvc repro` of the pipeline leaves on disk, with the old layout and the new, in one run.

    python -m bench.footprint

* **before**: DVC's default link type (``cache.type`` unset: reflink, else copy) and every finished
  run keeping its full ``last.pt`` (``runtime.keep_resume_state=true``), as up to session 6;
* **after**: the project's ``.dvc/config`` (``cache.type: hardlink,symlink,copy``) and finished
  ``train_mt``/``train_mgm`` runs shrunk to their record.

Each runs in a fresh git + DVC copy of this checkout at the default params (architecture, resolution,
image counts), with only the lengths cut (``--set`` below): a checkpoint's size depends on the
networks, not on how long they trained, so the bytes are those of a full default run. Bytes are
counted once per inode (a hard link costs nothing twice); the feature cache under ``runtime.cache``
is left out (safe to delete, shared by both runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench._common import report, timed

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("pipeline", "stages", "flows", "profiles", "data/sources", "dvc.yaml", "params.yaml", ".gitignore")
SHORT = (
    "gan.steps=1",
    "gan.fid_extractor=tiny",
    "synthesize.fid_extractor=tiny",
    "mgm.epochs=1",
    "train_mt.epochs=1",
)
LAYOUTS: dict[str, dict[str, Any]] = {
    "before": {"config": False, "keep": "true"},
    "after": {"config": True, "keep": "false"},
}


def _run(args: list[str], cwd: Path) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1", "MGM_PROGRESS_INTERVAL": "600"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def make_repo(repo: Path, layout: dict[str, Any], feature_cache: Path) -> None:
    """A git + DVC copy of this checkout with the layout's cache type and params."""
    for name in COPIED:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    _run(["git", "init", "-q", "-b", "main"], repo)
    _run([sys.executable, "-m", "dvc", "init", "-q"], repo)
    if layout["config"]:
        shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    sets = [*SHORT, f"runtime.keep_resume_state={layout['keep']}", f"runtime.cache={feature_cache}"]
    set_params(repo / "params.yaml", sets)
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "copy"], repo)


def set_params(path: Path, settings: list[str]) -> None:
    """Write ``key.sub=value`` settings (YAML values) into a params file."""
    params = yaml.safe_load(path.read_text())
    for setting in settings:
        dotted, value = setting.split("=", 1)
        *parents, leaf = dotted.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def disk_bytes(paths: list[Path]) -> int:
    """Bytes of the regular files under ``paths``, each inode once (symlinks are not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top in paths:
        for folder, _, files in os.walk(top):
            for name in files:
                info = os.lstat(Path(folder) / name)
                if not Path(folder, name).is_symlink() and (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total


def measure(repo: Path) -> dict[str, Any]:
    """Bytes of the outputs in the workspace, of the DVC cache, and of both counted together."""
    outputs = [
        repo / name
        for name in ("data/shards", "models", "reports", "metrics", "plots")
        if (repo / name).exists()
    ]
    cache = repo / ".dvc" / "cache"
    largest = sorted(
        ((p.stat().st_size, str(p.relative_to(repo))) for p in (repo / "models").rglob("*.pt")), reverse=True
    )[:6]
    return {
        "workspace_bytes": disk_bytes(outputs),
        "cache_bytes": disk_bytes([cache]),
        "total_bytes": disk_bytes([*outputs, cache]),
        "models_bytes": disk_bytes([repo / "models"]),
        "largest_checkpoints": {name: size for size, name in largest},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", help="keep the two repos in this folder (default: a temporary one)")
    parser.add_argument("--out")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mgm-footprint-"))
    results: dict[str, Any] = {"lengths_cut": list(SHORT)}
    try:
        for name, layout in LAYOUTS.items():
            repo = work / name
            make_repo(repo, layout, work / "feature-cache")
            seconds, _ = timed(lambda repo=repo: _run([sys.executable, "-m", "dvc", "repro", "-q"], repo))
            results[name] = {**measure(repo), "repro_seconds": round(seconds, 1)}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    before, after = results["before"], results["after"]
    results["before_total_bytes"] = before["total_bytes"]
    results["after_total_bytes"] = after["total_bytes"]
    results["ratio"] = round(after["total_bytes"] / before["total_bytes"], 3)
    report("footprint of a default dvc repro", results, args.out)


if __name__ == "__main__":
    main()
