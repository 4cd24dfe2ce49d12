"""Content hashes that name what a result was made from: files, and shard sets by their records."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shard_set_fingerprint(folder: str | Path) -> str:
    """Hash of a shard set's ``summary.json`` and ``manifest.parquet``: it changes whenever the shards do
    (the manifest holds every member's byte range and checksum), without reading the tars."""
    digest = hashlib.sha256()
    for name in ("summary.json", "manifest.parquet"):
        path = Path(folder) / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()
