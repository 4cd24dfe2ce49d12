"""A minimal reader of the shards' tar format: samples straight from the bytes of a whole shard.

Why not ``tarfile`` (through webdataset's iterator): it builds a ``TarInfo`` object per member and
reads each through a file object, which was about 40 % of the loader's time (docs/benchmarks.md). The
shard writer produces plain USTAR members (regular files, no long names), so walking the 512-byte
headers of a shard read into memory is all a reader needs. A PAX header (``x``) is honoured for its
``path``; any other member type, a bad header checksum or a member that runs past the end of the data
is an error, so a damaged shard is never read as a short one.
"""

from __future__ import annotations

from collections.abc import Iterator

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)


class TarFormatError(ValueError):
    """The bytes are not a well-formed tar of regular files (the message says where)."""


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156].split(b"\0", 1)[0].strip()
    if not stored:
        return False
    return sum(header) - sum(header[148:156]) + 8 * 32 == int(stored, 8)  # the field counts as spaces


def _pax_path(body: bytes) -> str | None:
    """The ``path`` record of a PAX extended header, if any (``<len> path=<value>\\n`` records)."""
    position = 0
    while position < len(body):
        space = body.index(b" ", position)
        length = int(body[position:space])
        record = body[space + 1 : position + length - 1]
        key, _, value = record.partition(b"=")
        if key == b"path":
            return value.decode()
        position += length
    return None


def iter_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(name, content)`` of each regular file in the tar bytes ``data``, in order."""
    view = memoryview(data)
    offset, size_total = 0, len(data)
    next_name: str | None = None
    while True:
        if offset + BLOCK > size_total:
            raise TarFormatError(f"the data ends at byte {size_total} without an end-of-archive block")
        header = bytes(view[offset : offset + BLOCK])
        if header == _ZERO_BLOCK:
            return
        if not _checksum_ok(header):
            raise TarFormatError(f"bad tar header checksum at byte {offset}")
        size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        start = offset + BLOCK
        end = start + size
        if end > size_total:
            raise TarFormatError(f"member at byte {offset} needs {size} bytes, the data ends at {size_total}")
        kind = header[156:157]
        if kind in (b"0", b"\0"):
            name = next_name
            if name is None:
                name = header[0:100].split(b"\0", 1)[0].decode()
                prefix = header[345:500].split(b"\0", 1)[0].decode()
                name = f"{prefix}/{name}" if prefix else name
            next_name = None
            yield name, bytes(view[start:end])
        elif kind == b"x":
            next_name = _pax_path(bytes(view[start:end]))
        elif kind != b"5":  # folders carry nothing
            raise TarFormatError(f"unsupported tar member type {kind!r} at byte {offset}")
        offset = start + -(-size // BLOCK) * BLOCK


def iter_samples(data: bytes) -> Iterator[dict[str, bytes | str]]:
    """Samples as webdataset groups them: consecutive members ``<key>.<field>`` make one record
    ``{"__key__": key, field: bytes, ...}``."""
    record: dict[str, bytes | str] | None = None
    for name, content in iter_members(data):
        key, dot, field = name.partition(".")
        if not dot:
            raise TarFormatError(f"member {name!r} has no field extension")
        if record is None or record["__key__"] != key:
            if record is not None:
                yield record
            record = {"__key__": key}
        record[field] = content
    if record is not None:
        yield record
