"""Prefect artifacts of the flows: metrics tables, sample grids, stage durations, links to DVC outputs.

The ``*_table``/``*_markdown`` functions build plain data (no Prefect); the ``publish_*`` functions
create the artifacts, keyed ``metrics-<stage>``, ``grids-<stage>``, ``stage-durations``,
``dvc-outputs``, ``sweep-results`` and ``sweep-plot`` (keys are lowercase letters, digits, dashes).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from flows.dvc_stages import Stage, read_lock

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key from free text: ``train_mt@st`` -> ``train-mt-st``."""
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``; numbers, strings and booleans kept, lists skipped."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, (int, float, str, bool)) and prefix:
        return {prefix: value}
    return {}


def read_metrics_file(path: Path) -> dict[str, Any]:
    """A JSON or YAML metrics file, flattened; a missing or unreadable file gives ``{}``."""
    try:
        text = path.read_text()
        loaded = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return flatten(loaded)


def metrics_table(repo: Path, metric_files: Sequence[str]) -> list[dict[str, Any]]:
    """One row per metric, one column per metrics file (named by its stem), for a table artifact."""
    columns = {Path(name).stem if _unique_stems(metric_files) else name: name for name in metric_files}
    values = {column: read_metrics_file(repo / name) for column, name in columns.items()}
    keys = list(dict.fromkeys(key for flat in values.values() for key in flat))
    return [{"metric": key, **{column: values[column].get(key, "") for column in columns}} for key in keys]


def _unique_stems(names: Sequence[str]) -> bool:
    return len({Path(name).stem for name in names}) == len(names)


def find_images(repo: Path, outputs: Iterable[str], limit: int) -> list[Path]:
    """Image files among ``outputs`` (files or folders), at most ``limit``: the last ones by path."""
    found: list[Path] = []
    for output in outputs:
        path = repo / output
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    found = sorted(set(found))
    return found[-limit:] if limit else []


def image_data_uri(path: Path, max_side: int) -> str:
    """``path`` shrunk to fit ``max_side`` (aspect kept), as a PNG ``data:`` URI."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def images_markdown(repo: Path, images: Sequence[Path], title: str, max_side: int, max_bytes: int) -> str:
    """Markdown embedding ``images`` as data URIs; past ``max_bytes`` in all, the rest are named only."""
    lines = [f"# {title}", ""]
    used = 0
    for path in images:
        name = path.relative_to(repo).as_posix()
        uri = image_data_uri(path, max_side)
        if used + len(uri) > max_bytes:
            lines += [
                f"- `{name}` (not embedded: the artifact's {max_bytes // 1024} KiB image budget is spent)"
            ]
            continue
        used += len(uri)
        lines += [f"## {name}", "", f"![{name}]({uri})", ""]
    return "\n".join(lines)


def durations_table(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows ``order, stage, status, seconds, attempts`` of the stages a flow ran."""
    return [
        {
            "order": index + 1,
            "stage": run["stage"],
            "status": run["status"],
            "seconds": round(float(run["seconds"]), 2),
            "attempts": run["attempts"],
        }
        for index, run in enumerate(runs)
    ]


def outputs_markdown(repo: Path, stages: Sequence[Stage], remote: tuple[str, str] | None) -> str:
    """Every stage's outputs with their ``dvc.lock`` hashes and sizes, linked, plus how to fetch them."""
    lock = read_lock(repo)
    lines = [
        "# DVC outputs",
        "",
        f"Project: `{repo}`",
        "",
        "| stage | output | md5 (dvc.lock) | size | files |",
        "|---|---|---|---|---|",
    ]
    for stage in stages:
        recorded = {entry["path"]: entry for entry in lock.get(stage.name, {}).get("outs", [])}
        for output in stage.outs:
            entry = _lock_entry(recorded, output)
            link = f"[{output}]({(repo / output).as_uri()})"
            md5 = entry.get("md5", "not recorded") if entry else "not recorded"
            size = _human_size(entry["size"]) if entry and "size" in entry else ""
            files = entry.get("nfiles", 1 if entry else "") if entry else ""
            lines.append(f"| {stage.name} | {link} | `{md5}` | {size} | {files} |")
    lines += ["", "## Sharing", ""]
    if remote:
        lines.append(f"Default DVC remote `{remote[0]}`: `{remote[1]}`. `dvc push` uploads these versions.")
    else:
        lines.append(
            "No default DVC remote: `dvc remote add -d local ../mgm-dvc-store` sets one (docs/sharing.md)."
        )
    lines += [
        "",
        "Another clone gets them with `git pull && dvc pull <output>`; without a clone:",
        "`dvc get <repo-url> <output> --rev <commit>` or `dvc import <repo-url> <output>`.",
    ]
    return "\n".join(lines)


def _lock_entry(recorded: Mapping[str, Mapping[str, Any]], output: str) -> Mapping[str, Any] | None:
    for path, entry in recorded.items():
        if Path(path).as_posix().rstrip("/") == output.rstrip("/"):
            return entry
    return None


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def publish_stage_artifacts(
    repo: Path, stage: Stage, grid_images: int, max_side: int, max_kb: int
) -> list[str]:
    """The ``metrics-<stage>`` table and ``grids-<stage>`` markdown of one stage; returns the keys made."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    made = []
    if stage.metrics:
        rows = metrics_table(repo, stage.metrics)
        if rows:
            key = artifact_key("metrics", stage.name)
            create_table_artifact(rows, key=key, description=f"Metrics written by DVC stage `{stage.name}`")
            made.append(key)
    images = find_images(repo, [out for out in stage.outs if out not in stage.metrics], grid_images)
    if images:
        key = artifact_key("grids", stage.name)
        markdown = images_markdown(repo, images, f"Images of stage {stage.name}", max_side, max_kb * 1024)
        create_markdown_artifact(markdown, key=key, description=f"Sample grids of DVC stage `{stage.name}`")
        made.append(key)
    return made


def published_keys(keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` the server already holds an artifact for (any run)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys))))
    return {artifact.key for artifact in found}


def stage_artifact_keys(stage: Stage) -> list[str]:
    """The artifact keys :func:`publish_stage_artifacts` may make for ``stage``."""
    return [artifact_key("metrics", stage.name), artifact_key("grids", stage.name)]


def publish_run_summary(
    repo: Path, stages: Sequence[Stage], runs: Sequence[Mapping[str, Any]], remote: tuple[str, str] | None
) -> list[str]:
    """The ``stage-durations`` table and the ``dvc-outputs`` markdown of a pipeline flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_table_artifact(
        durations_table(runs), key="stage-durations", description="Wall time and attempts of each DVC stage"
    )
    create_markdown_artifact(
        outputs_markdown(repo, stages, remote), key="dvc-outputs", description="DVC-versioned outputs"
    )
    return ["stage-durations", "dvc-outputs"]


def publish_sweep_artifacts(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], files: Mapping[str, Path], ratio_param: str
) -> list[str]:
    """The ``sweep-results`` table (one row per ratio) and the ``sweep-plot`` markdown (embedded plot)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    keep = ("ratio", "experiment", "rev", *columns)
    table = [{key: row.get(key, "") for key in keep} for row in rows]
    create_table_artifact(table, key="sweep-results", description=f"DVC experiments per `{ratio_param}`")
    uri = image_data_uri(files["png"], max_side=1600)
    listing = "\n".join(f"- `{path}`" for path in files.values())
    markdown = f"# Metrics against `{ratio_param}`\n\n![sweep plot]({uri})\n\nFiles:\n\n{listing}\n"
    create_markdown_artifact(markdown, key="sweep-plot", description=f"Metrics against `{ratio_param}`")
    return ["sweep-results", "sweep-plot"]
