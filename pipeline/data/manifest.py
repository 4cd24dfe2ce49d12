"""Parquet manifests of shard sets: one row per sample with its shard, byte range and labels."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.atomic import write_bytes_atomic
from pipeline.errors import ShardError

MANIFEST_NAME = "manifest.parquet"


@dataclass(frozen=True)
class ManifestRow:
    """Where one sample lives and what it is."""

    shard: str
    key: str
    split: str
    source: str
    id: str
    scene: int
    scene_name: str
    offset: int
    size: int


MANIFEST_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("key", pa.string()),
        ("split", pa.string()),
        ("source", pa.string()),
        ("id", pa.string()),
        ("scene", pa.int32()),
        ("scene_name", pa.string()),
        ("offset", pa.int64()),
        ("size", pa.int64()),
    ]
)


def sample_byte_ranges(shard_path: Path) -> dict[str, tuple[int, int]]:
    """Map each sample key in a tar shard to (offset of its first header, bytes up to its end)."""
    ranges: dict[str, tuple[int, int]] = {}
    with tarfile.open(shard_path, "r:") as tar:
        for member in tar:
            key = member.name.split(".", 1)[0]
            end = member.offset_data + _padded(member.size)
            start, _ = ranges.get(key, (member.offset, 0))
            ranges[key] = (start, end - start)
    return ranges


def _padded(size: int) -> int:
    return (size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE


def write_manifest(rows: Sequence[ManifestRow], path: Path) -> Path:
    """Write ``rows`` as a Parquet table (deterministic bytes for equal rows)."""
    columns = {f.name: [getattr(row, f.name) for row in rows] for f in fields(ManifestRow)}
    table = pa.table(columns, schema=MANIFEST_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return write_bytes_atomic(path, buffer.getvalue())


def read_manifest(folder_or_file: str | Path) -> pa.Table:
    """Read a shard set's manifest (give the folder or the ``.parquet`` file)."""
    path = Path(folder_or_file)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise ShardError(f"manifest {path} does not exist: is this a shard set written by `mgm shard`?")
    try:
        return pq.read_table(path)
    except Exception as err:
        raise ShardError(f"manifest {path} is not readable Parquet: {err}") from err


def rows_for_split(table: pa.Table, split: str) -> Iterable[dict]:
    """Rows of one split as dicts."""
    return (row for row in table.to_pylist() if row["split"] == split)
