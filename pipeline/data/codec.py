"""Encode samples to the bytes stored in WebDataset shards, and decode them back.

Field names inside a sample (``<key>.<field>``): ``rgb.png``, ``seg.png``, ``depth.npy``
(float16 metres, 0 = invalid), ``normal.npy`` (float16 HxWx3, zeros = invalid), ``scene.cls``
(decimal text) and ``meta.json`` (sorted keys), plus one field per map task the sample carries
(``edge_texture.png``, ..., ``curvature.npy``: :mod:`pipeline.data.dense_maps`). Encoding is
deterministic: the same sample always gives the same bytes.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

from pipeline.data.dense_maps import MAP_TASKS, quantise_unit
from pipeline.data.schema import Sample

DENSE_FIELDS = ("seg.png", "depth.npy", "normal.npy")
REQUIRED_FIELDS = ("rgb.png", "scene.cls", "meta.json")
_DENSE = ("seg", "depth", "normal", *MAP_TASKS)
_PNG_CHANNELS = {"RGB": 3, "L": 1}


class DecodeError(ValueError):
    """A field of a stored sample cannot be decoded (the caller adds the shard and key)."""


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 HxW or HxWx3 array (deterministic)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def encode_npy(array: np.ndarray) -> bytes:
    """``.npy`` bytes of ``array`` (deterministic header)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def encode_json(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces), so equal dicts give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def encode_sample(sample: Sample, split: str) -> dict[str, Any]:
    """The WebDataset dict (``__key__`` plus one bytes value per field) of ``sample``."""
    meta = {**sample.meta, "split": split}
    record: dict[str, Any] = {
        "__key__": sample.key,
        "rgb.png": encode_png(sample.rgb),
        "scene.cls": str(int(sample.scene)).encode(),
        "meta.json": encode_json(meta),
    }
    if sample.seg is not None:
        record["seg.png"] = encode_png(sample.seg)
    if sample.depth is not None:
        record["depth.npy"] = encode_npy(sample.depth.astype(np.float16))
    if sample.normal is not None:
        record["normal.npy"] = encode_npy(sample.normal.astype(np.float16))
    for name in sorted(sample.maps):
        spec, values = MAP_TASKS[name], sample.maps[name]
        if spec.storage == "png":
            record[spec.field] = encode_png(quantise_unit(values))
        else:
            record[spec.field] = encode_npy(values.astype(np.float16))
    return record


def decode_png(data: bytes, mode: str) -> np.ndarray:
    """Decode PNG bytes to a uint8 array in ``mode`` (``RGB``: HxWx3, ``L``: HxW).

    Why OpenCV and not PIL: ``cv2.imdecode`` skips PIL's per-image plugin and file-object layers,
    about a third of the loader's PNG time at 64 px (docs/benchmarks.md), and it refuses truncated
    data outright. A PNG with another layout (alpha, palette, 16 bit) is an error, not a conversion.
    """
    if not data:
        raise DecodeError("empty PNG")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DecodeError("corrupt or truncated PNG")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype != np.uint8 or channels != _PNG_CHANNELS[mode]:
        raise DecodeError(
            f"PNG holds {channels} channel(s) of {image.dtype}, expected {mode} "
            f"({_PNG_CHANNELS[mode]} x uint8)"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if mode == "RGB" else image


_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=][a-z]\d+)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \}"
)


def decode_npy(data: bytes) -> np.ndarray:
    """Decode ``.npy`` bytes without pickles.

    The headers this project writes (version 1.0, a plain numeric dtype) are parsed directly, which
    spares ``np.load`` its per-array ``ast.literal_eval`` and file-object reads (a fifth of the
    loader's time); anything else goes through ``np.load``.
    """
    if data[:8] == b"\x93NUMPY\x01\x00" and len(data) >= 10:
        header_length = int.from_bytes(data[8:10], "little")
        match = _NPY_HEADER.match(data, 10, 10 + header_length)
        if match is not None:
            dtype = np.dtype(match.group(1).decode())
            shape = tuple(int(part) for part in match.group(3).split(b",") if part.strip())
            count = int(np.prod(shape)) if shape else 1
            if dtype.itemsize * count == len(data) - 10 - header_length:
                array = np.frombuffer(data, dtype=dtype, count=count, offset=10 + header_length)
                return array.reshape(shape, order="F" if match.group(2) == b"True" else "C")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:
        raise DecodeError(f"corrupt .npy: {err}") from err


def decode_fields(record: dict[str, Any], dense: Sequence[str] | None = None) -> dict[str, Any]:
    """Decode the stored bytes of one sample to numpy arrays and Python values.

    Returns ``rgb`` (uint8 HxWx3), ``scene`` (int), ``meta`` (dict) and, when present and asked
    for in ``dense`` (``None``: every one present), ``seg`` (uint8 HxW), ``depth`` (float32 HxW),
    ``normal`` (float32 HxWx3) and each map task (float32 HxW, or HxWxC; ``png`` maps in [0, 1]).
    A stage that needs no pixel labels does not pay for decoding them.
    """
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        raise DecodeError(f"missing field(s) {', '.join(missing)}")
    out: dict[str, Any] = {"rgb": decode_png(record["rgb.png"], "RGB")}
    height, width = out["rgb"].shape[:2]
    try:
        out["scene"] = int(record["scene.cls"].decode())
        out["meta"] = json.loads(record["meta.json"])
    except (ValueError, UnicodeDecodeError) as err:
        raise DecodeError(f"bad scene.cls or meta.json: {err}") from err
    if dense is not None:
        record = {name: value for name, value in record.items() if name.split(".")[0] not in _DENSE or
                  name.split(".")[0] in dense}  # fmt: skip
    if "seg.png" in record:
        out["seg"] = _check_shape("seg", decode_png(record["seg.png"], "L"), (height, width))
    if "depth.npy" in record:
        depth = _check_shape("depth", decode_npy(record["depth.npy"]), (height, width)).astype(np.float32)
        if not np.isfinite(depth).all():
            raise DecodeError("depth holds NaN or infinite values")
        out["depth"] = depth
    if "normal.npy" in record:
        out["normal"] = _check_shape("normal", decode_npy(record["normal.npy"]), (height, width, 3)).astype(
            np.float32
        )
    for name, spec in MAP_TASKS.items():
        if spec.field not in record:
            continue
        if spec.storage == "png":
            values = decode_png(record[spec.field], "L").astype(np.float32) / np.float32(255.0)
        else:
            values = decode_npy(record[spec.field]).astype(np.float32)
            if not np.isfinite(values).all():
                raise DecodeError(f"{name} holds NaN or infinite values")
        out[name] = _check_shape(name, values, spec.shape(height, width))
    return out


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.shape != shape:
        raise DecodeError(f"{name} has shape {array.shape}, expected {shape} (from rgb)")
    return array
