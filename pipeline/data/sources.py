"""Build the configured :class:`~pipeline.data.source.Source` from the ``data`` params."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.config import DataParams
from pipeline.data.dense_maps import BASE_TASKS, map_tasks_of
from pipeline.data.source import Source
from pipeline.errors import ParamsError


def check_maps(source_class: type[Source], source_name: str, tasks: Sequence[str]) -> tuple[str, ...]:
    """The map tasks among ``tasks`` (``model.tasks``), refused with the reason when ``source_class``
    cannot provide one."""
    wanted = map_tasks_of(tasks)
    for task in wanted:
        if task not in source_class.map_tasks:
            provides = ", ".join((*BASE_TASKS, *source_class.map_tasks))
            reason = source_class.map_refusals.get(task, f"it provides {provides}")
            raise ParamsError(f"model.tasks: {task!r} cannot come from data.source={source_name}: {reason}")
    return wanted


def make_source(data: DataParams, tasks: Sequence[str] = BASE_TASKS) -> Source:
    """The source named by ``data.source``, its samples carrying the map tasks among ``tasks``;
    importers check ``data.path`` exists first."""
    if data.source == "rooms":
        from pipeline.data.rooms import RoomsSource

        return RoomsSource(
            resolution=data.resolution,
            seed=data.seed,
            train=data.rooms.train,
            val=data.rooms.val,
            test=data.rooms.test,
            reference=data.rooms.reference,
            maps=check_maps(RoomsSource, data.source, tasks),
        )
    path = Path(data.path)
    if not path.exists():
        raise ParamsError(f"data.path: {path} does not exist (needed by data.source={data.source})")
    if data.source == "nyuv2-mat":
        from pipeline.data.nyuv2 import NYUv2MatSource

        check_maps(NYUv2MatSource, data.source, tasks)
        return NYUv2MatSource(path, data.resolution, data.num_classes, data.split, data.seed)
    if data.source == "nyuv2-folder":
        from pipeline.data.nyuv2 import NYUv2FolderSource

        check_maps(NYUv2FolderSource, data.source, tasks)
        return NYUv2FolderSource(path, data.resolution, data.num_classes, data.split, data.seed)
    from pipeline.data.taskonomy import TaskonomySource

    if data.taskonomy.scenes_csv is None:
        raise ParamsError("data.taskonomy.scenes_csv: required for data.source=taskonomy (csv: image,scene)")
    maps = check_maps(TaskonomySource, data.source, tasks)
    return TaskonomySource(path, data.taskonomy.scenes_csv, data.resolution, data.split, data.seed, maps=maps)
