"""Build the configured :class:`~pipeline.data.source.Source` from the ``data`` params."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import DataParams
from pipeline.data.source import Source
from pipeline.errors import ParamsError


def make_source(data: DataParams) -> Source:
    """The source named by ``data.source``; importers check ``data.path`` exists first."""
    if data.source == "rooms":
        from pipeline.data.rooms import RoomsSource

        return RoomsSource(
            resolution=data.resolution,
            seed=data.seed,
            train=data.rooms.train,
            val=data.rooms.val,
            test=data.rooms.test,
            reference=data.rooms.reference,
        )
    path = Path(data.path)
    if not path.exists():
        raise ParamsError(f"data.path: {path} does not exist (needed by data.source={data.source})")
    if data.source == "nyuv2-mat":
        from pipeline.data.nyuv2 import NYUv2MatSource

        return NYUv2MatSource(path, data.resolution, data.num_classes, data.split, data.seed)
    if data.source == "nyuv2-folder":
        from pipeline.data.nyuv2 import NYUv2FolderSource

        return NYUv2FolderSource(path, data.resolution, data.num_classes, data.split, data.seed)
    from pipeline.data.taskonomy import TaskonomySource

    if data.taskonomy.scenes_csv is None:
        raise ParamsError("data.taskonomy.scenes_csv: required for data.source=taskonomy (csv: image,scene)")
    return TaskonomySource(path, data.taskonomy.scenes_csv, data.resolution, data.split, data.seed)
