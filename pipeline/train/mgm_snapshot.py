"""The MGM model as checkpoint entries: the joint loop's snapshot and its ``generator.pt`` export.

A joint-training snapshot (``best.pt``, and ``generator.pt`` exported from it) holds:

* ``model``, ``tasks``, ``num_classes``, ``model_config``: M, loadable like a ``train_mt`` best.pt;
* ``refinement``: :func:`~pipeline.models.refinement.refinement_entry` of R (when trained);
* with a generator: the ``train_gan`` checkpoint fields (``kind``, ``config.sagan``, ``scene_names``,
  ``generator``, ``generator_ema``, ``discriminator``, ``step``), so
  :func:`pipeline.generators.load_generator` reads ``generator.pt``, plus ``guide`` (the latent
  guide's config and state) when G was trained jointly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.generators import CHECKPOINT_KIND
from pipeline.models.refinement import refinement_entry
from pipeline.train.mgm_models import JointModels

SNAPSHOT_KIND = "mgm-joint"


def snapshot(
    models: JointModels,
    model_config: Mapping[str, Any],
    scene_names: Sequence[str],
    num_classes: int,
    generator_steps: int,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The weights of every part as a weights-only checkpoint dict (see the module docstring)."""
    state: dict[str, Any] = {
        "kind": SNAPSHOT_KIND,
        "tasks": list(models.net.tasks),
        "num_classes": num_classes,
        "model": models.net.state_dict(),
        "model_config": dict(model_config),
        "scene_names": list(scene_names),
    }
    if models.refinement is not None:
        state["refinement"] = refinement_entry(models.refinement)
    if models.ssl_head is not None:
        state["ssl_head"] = models.ssl_head.state_dict()
    if models.generator is not None:
        assert models.generator_ema is not None and models.sagan_config is not None
        state["config"] = {"sagan": models.sagan_config.as_dict()}
        state["generator"] = models.generator.state_dict()
        state["generator_ema"] = models.generator_ema.state_dict()
        state["step"] = models.gan_step + generator_steps
        if models.discriminator is not None:
            state["discriminator"] = models.discriminator.state_dict()
        if models.guide is not None:
            state["guide"] = {"config": models.guide.config, "state": models.guide.state_dict()}
    return state | dict(extra or {})


def generator_export(best: Mapping[str, Any]) -> dict[str, Any]:
    """``generator.pt``: a snapshot with a generator, marked as a ``train_gan`` checkpoint."""
    if "generator_ema" not in best:
        raise ValueError("generator_export: the snapshot holds no generator (mgm.weak is not synthetic)")
    return {**best, "kind": CHECKPOINT_KIND}
