"""The interface every dataset source implements, and the factory that builds one from params."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from pipeline.data.schema import Sample

SPLITS_WITH_LABELS = ("train", "val", "test", "reference")
"""Splits a source defines; the ``shard`` stage carves ``weak`` out of ``train``. ``reference``
(optional; the rooms source renders it) holds real images for the generator's metrics only."""


class Source(ABC):
    """A dataset that yields :class:`Sample` objects at a fixed square resolution.

    ``split_ids()`` names the items of each split; ``load(item_id)`` returns one sample whose
    ``key`` is unique within the source and whose ``meta`` holds ``source`` and ``id``.
    Loading must be a pure function of the item id (and the source's construction arguments),
    so that shards are reproducible and loading parallelises across processes.
    """

    name: str
    class_names: tuple[str, ...]
    scene_names: tuple[str, ...]
    map_tasks: tuple[str, ...] = ()
    """The map tasks (:mod:`pipeline.data.dense_maps`) this source can provide besides the base three."""
    map_refusals: ClassVar[dict[str, str]] = {}
    """Map task -> why this source cannot provide it (when the reason is more than "no such files")."""
    maps: tuple[str, ...] = ()
    """The map tasks every sample it loads carries (chosen from ``model.tasks`` by the factory)."""

    @abstractmethod
    def split_ids(self) -> dict[str, Sequence[str]]:
        """Item ids of ``train``, ``val``, ``test`` (and optionally ``reference``), each in a
        deterministic order."""

    @abstractmethod
    def load(self, item_id: str) -> Sample:
        """Load one item, resized to the source's resolution, in the sample schema."""
