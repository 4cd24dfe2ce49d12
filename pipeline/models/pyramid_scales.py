"""Which encoder strides a multi-scale head may read, checked without importing torch (params
validation runs it)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.errors import ParamsError

MTI_STRIDES = (2, 4, 8, 16, 32)
"""The strides an MTI-Net scale may use (those of the encoders' pyramids)."""


def check_scales(
    scales: Sequence[int], resolution: int | None = None, *, param: str = "model.mti.scales"
) -> None:
    """Scales must be pyramid strides, finest first, each twice the one before; at ``resolution``
    every scale must give a map of at least 2 x 2. Raises :class:`ParamsError` naming ``param``."""
    scales = list(scales)
    if len(scales) < 2:
        raise ParamsError(f"{param}: MTI-Net needs at least two scales, got {scales}")
    unknown = [s for s in scales if s not in MTI_STRIDES]
    if unknown:
        raise ParamsError(f"{param}: {unknown} are not encoder strides (choose from {list(MTI_STRIDES)})")
    if any(b != 2 * a for a, b in zip(scales, scales[1:])):
        raise ParamsError(
            f"{param}: scales must double from finest to coarsest, e.g. [4, 8, 16, 32]; got {scales}"
        )
    if resolution is not None and resolution // scales[-1] < 2:
        finer = [s // 2 for s in scales] if scales[0] > 2 else None
        hint = f"; use {finer}" if finer else ""
        raise ParamsError(
            f"{param}: stride {scales[-1]} gives a {resolution // scales[-1]}x{resolution // scales[-1]} map "
            f"at {resolution} px (data.resolution); every scale needs at least 2x2{hint}"
        )
