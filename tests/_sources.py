"""A small, real :class:`Source` for tests of the shard writer and reader (fast to generate)."""

from __future__ import annotations

import numpy as np

from pipeline.data.schema import NYU13_CLASSES, Sample
from pipeline.data.source import Source

SCENES = ("alpha", "beta", "gamma")


class GradientSource(Source):
    """Deterministic synthetic samples: RGB noise, a seg pattern, a tilted depth plane, unit normals."""

    name = "gradient"
    class_names = NYU13_CLASSES
    scene_names = SCENES

    def __init__(
        self, resolution: int = 32, train: int = 12, val: int = 4, test: int = 4, bad: str = ""
    ) -> None:
        self.resolution = resolution
        self.counts = {"train": train, "val": val, "test": test}
        self.bad = bad

    def split_ids(self) -> dict[str, list[str]]:
        offsets = {"train": 0, "val": 1000, "test": 2000}
        return {split: [str(offsets[split] + i) for i in range(n)] for split, n in self.counts.items()}

    def load(self, item_id: str) -> Sample:
        index = int(item_id)
        rng = np.random.default_rng(index)
        size = self.resolution
        yy, xx = np.mgrid[0:size, 0:size]
        seg = ((xx // 4 + yy // 4 + index) % len(NYU13_CLASSES)).astype(np.uint8)
        seg[:2, :2] = 255
        depth = (1.0 + 0.05 * yy + 0.1 * (index % 5)).astype(np.float32)
        normal = np.zeros((size, size, 3), np.float32)
        normal[..., 2] = -1.0
        sample = Sample(
            key=f"grad-{index:05d}",
            rgb=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            seg=seg,
            depth=depth,
            normal=normal,
            scene=index % len(SCENES),
            meta={"source": self.name, "id": item_id, "scene_name": SCENES[index % len(SCENES)]},
        )
        if item_id == self.bad:
            sample.seg[5, 5] = 77
        return sample
