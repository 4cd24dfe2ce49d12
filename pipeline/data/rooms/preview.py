"""A picture of the embedded rooms dataset: rooms of every scene type in one grid."""

from __future__ import annotations

from pathlib import Path

from pipeline.viz import (
    sample_grid,
    save_image,
)


def rooms_preview(path: str | Path, resolution: int = 128, seed: int = 0, per_scene: int = 2) -> Path:
    """Write a grid of ``per_scene`` rooms of every scene type (the picture in ``docs/``)."""
    from pipeline.data.rooms import SCENE_TYPES, render_room, scene_type_of

    chosen: dict[int, list[int]] = {scene: [] for scene in range(len(SCENE_TYPES))}
    index = 0
    while any(len(found) < per_scene for found in chosen.values()):
        found = chosen[scene_type_of(seed, index)]
        if len(found) < per_scene:
            found.append(index)
        index += 1
    samples = [render_room(seed, i, resolution) for scene in sorted(chosen) for i in chosen[scene]]
    return save_image(sample_grid(samples, scene_names=SCENE_TYPES), path)
