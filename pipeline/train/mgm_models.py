"""The networks and optimizers of the joint MGM loop, built from params and a ``train_gan`` checkpoint.

* M (encoder + one decoder per task) is built fresh exactly as ``train_mt`` builds it, after
  seeding with ``mgm.seed``; the dense loss is ``train_mt``'s (weights, weighting, normal loss).
* R (:class:`~pipeline.models.refinement.RefinementNet`) when ``mgm.refinement``.
* The SSL head (SimCLR projection or reconstruction decoder) unless ``mgm.ssl`` is ``none``.
* G and D from ``mgm.gan_checkpoint`` when ``mgm.weak`` is ``synthetic``: G from the checkpoint's
  EMA or raw generator (``mgm.generator_init``), D from its discriminator, an EMA copy of G for
  grids and export. With ``mgm.joint`` a :class:`~pipeline.models.guided.LatentGuide` feeds
  ``z + proj(E(x))`` to G; without it G is the pre-trained SAGAN, frozen and in eval mode.

Every trainable part has its own Adam optimizer, so a step updates exactly the parts it steps
(an optimizer with weight decay would otherwise move parameters whose gradient is zero).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.checkpoint import CheckpointError, load_checkpoint, load_state_strict
from pipeline.config import Params
from pipeline.generators import CHECKPOINT_KIND
from pipeline.models.guided import GuidedGenerator, LatentGuide, widen_generator_input
from pipeline.models.multitask import MultiTaskNet
from pipeline.models.refinement import RefinementNet
from pipeline.models.sagan import Discriminator, Generator, SaganConfig
from pipeline.runtime import seed_everything
from pipeline.tasks.losses import MultiTaskLoss
from pipeline.train.builders import build_loss, build_model
from pipeline.train.ssl import build_ssl_head

PARTS = ("encoder", "decoders", "refinement", "ssl_head", "generator", "guide", "discriminator")
"""The independently updated parts of the joint model, each with its own optimizer."""


def build_refinement(
    params: Params, tasks: Sequence[str], num_classes: int, num_scenes: int
) -> RefinementNet:
    """A fresh R as the ``mgm.refinement_*`` params describe it (the joint loop's, or mix's fresh one)."""
    cfg = params.mgm
    return RefinementNet(
        tasks, num_classes, num_scenes, cfg.refinement_width, cfg.refinement_hidden,
        arch=cfg.refinement_arch, seg_input=cfg.refinement_input,
    )  # fmt: skip


def uses_generator(params: Params) -> bool:
    """Steps 5-6 draw synthetic images from G (``mgm.weak`` is ``synthetic``)."""
    return params.mgm.weak == "synthetic"


def trains_generator(params: Params) -> bool:
    """Step 4 runs: G, D and the guide train with M (``mgm.joint`` with synthetic images)."""
    return uses_generator(params) and params.mgm.joint


@dataclass
class JointModels:
    """Everything the six steps touch. Absent parts are ``None``."""

    net: MultiTaskNet
    criterion: MultiTaskLoss
    refinement: RefinementNet | None = None
    ssl_head: nn.Module | None = None
    generator: Generator | None = None
    guide: LatentGuide | None = None
    discriminator: Discriminator | None = None
    generator_ema: Generator | None = None
    sagan_config: SaganConfig | None = None
    gan_step: int = 0
    _decoders: nn.Module | None = field(default=None, repr=False)

    def parts(self) -> dict[str, nn.Module]:
        """Part name -> module, for the parts present (``decoders`` includes the loss's parameters)."""
        if self._decoders is None:
            self._decoders = nn.ModuleDict({"decoders": self.net.decoders, "loss": self.criterion})
        found: dict[str, nn.Module | None] = {
            "encoder": self.net.encoder,
            "decoders": self._decoders,
            "refinement": self.refinement,
            "ssl_head": self.ssl_head,
            "generator": self.generator,
            "guide": self.guide,
            "discriminator": self.discriminator,
        }
        return {name: module for name, module in found.items() if module is not None}

    def train(self) -> None:
        """Training mode for every part, except a frozen pre-trained G (eval, as synthesis uses it)."""
        self.net.train()
        for name, module in self.parts().items():
            module.train(name != "generator" or self.guide is not None)

    def guided(self) -> GuidedGenerator | None:
        """G behind the guide (joint training), else ``None``."""
        if self.generator is None or self.guide is None:
            return None
        return GuidedGenerator(self.generator, self.guide)

    def to(self, device: torch.device) -> JointModels:
        for module in (*self.parts().values(), self.generator_ema):
            if module is not None:
                module.to(device)
        return self


@dataclass
class JointOptimizers:
    """One Adam per present part (see :data:`PARTS`) and the per-epoch schedulers of M's side."""

    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]

    def __getitem__(self, part: str) -> torch.optim.Optimizer:
        return self.optimizers[part]

    def __iter__(self) -> Iterator[str]:
        return iter(self.optimizers)

    def step_schedulers(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    def lr(self, part: str = "encoder") -> float:
        return float(self.optimizers[part].param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        saved, saved_sched = state["optimizers"], state["schedulers"]
        if set(saved) != set(self.optimizers) or set(saved_sched) != set(self.schedulers):
            raise CheckpointError(
                f"{where}: optimizers {sorted(saved)} do not match this run's {sorted(self.optimizers)}"
            )
        try:
            for name, optimizer in self.optimizers.items():
                optimizer.load_state_dict(saved[name])
            for name, scheduler in self.schedulers.items():
                scheduler.load_state_dict(saved_sched[name])
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"{where}: optimizer state does not match: {err}") from err


def load_gan_checkpoint(
    path: str | Path, scene_names: Sequence[str], resolution: int, real_folder: str | Path
) -> dict[str, Any]:
    """The ``train_gan`` checkpoint at ``path``, checked against the real data's scenes and resolution."""
    where = f"mgm.gan_checkpoint: {path}"
    if not Path(path).is_file():
        raise CheckpointError(f"{where} does not exist: run `mgm train_gan` first or set mgm.gan_checkpoint")
    state = load_checkpoint(path)
    if state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{where} is not a train_gan checkpoint (kind {state.get('kind')!r})")
    stored = state["config"]["sagan"]
    stored_scenes = list(state.get("scene_names", []))
    if stored["num_classes"] != len(scene_names) or (stored_scenes and stored_scenes != list(scene_names)):
        raise CheckpointError(
            f"{where} was trained on {stored['num_classes']} scene classes {stored_scenes}, but the real "
            f"shards in {real_folder} have {len(scene_names)}: {list(scene_names)}; retrain the GAN on "
            "these shards (`mgm train_gan`) or point mgm.gan_checkpoint at a matching checkpoint"
        )
    if stored["resolution"] != resolution:
        raise CheckpointError(
            f"{where} generates {stored['resolution']} px images, the real shards are {resolution} px "
            "(data.resolution): retrain the GAN at this resolution or point mgm.gan_checkpoint elsewhere"
        )
    return state


def build_joint_models(
    params: Params,
    num_classes: int,
    scene_names: Sequence[str],
    resolution: int,
    device: torch.device,
) -> JointModels:
    """M fresh (seeded by ``mgm.seed``), R, the SSL head, and G/D/guide from ``mgm.gan_checkpoint``."""
    cfg = params.mgm
    tasks = list(params.model.tasks)
    seed_everything(cfg.seed)
    net = build_model(params, tasks, num_classes)
    models = JointModels(net=net, criterion=build_loss(params, tasks))
    if cfg.refinement:
        models.refinement = build_refinement(params, tasks, num_classes, len(scene_names))
    models.ssl_head = build_ssl_head(
        cfg.ssl, net.feature_channels, resolution, params.ssl.dim, hidden=params.ssl.hidden
    )
    if uses_generator(params):
        _attach_gan(models, params, scene_names, resolution)
    return models.to(device)


def _attach_gan(models: JointModels, params: Params, scene_names: Sequence[str], resolution: int) -> None:
    cfg = params.mgm
    state = load_gan_checkpoint(cfg.gan_checkpoint, scene_names, resolution, params.shard.out)
    config = SaganConfig(**state["config"]["sagan"])
    where = f"mgm.gan_checkpoint: {cfg.gan_checkpoint}"
    source = "generator_ema" if cfg.generator_init == "ema" else "generator"
    generator = Generator(config)
    load_state_strict(generator, state[source], f"{where} ({source})")
    ema = Generator(config)
    ema.load_state_dict(generator.state_dict())
    ema.eval().requires_grad_(False)
    models.generator, models.generator_ema = generator, ema
    models.sagan_config, models.gan_step = config, int(state.get("step", 0))
    if not cfg.joint:
        generator.eval().requires_grad_(False)
        return
    discriminator = Discriminator(config)
    load_state_strict(discriminator, state["discriminator"], f"{where} (discriminator)")
    models.discriminator = discriminator
    models.guide = LatentGuide(models.net.feature_channels, config.latent_dim, cfg.guide)
    GuidedGenerator(generator, models.guide)  # widens G's first layer for "concat"
    widen_generator_input(ema, models.guide.extra_inputs)


def build_optimizers(params: Params, models: JointModels) -> JointOptimizers:
    """Adam per part: M, head and guide at ``mgm.lr``, R at ``mgm.r_lr`` (weight decay
    ``mgm.weight_decay``); G and D at the TTUR rates and betas of the GAN, without weight decay."""
    cfg, gan = params.mgm, params.gan
    betas = (float(gan.betas[0]), float(gan.betas[1]))
    settings = {
        "encoder": {"lr": cfg.lr, "weight_decay": cfg.weight_decay},
        "decoders": {"lr": cfg.lr, "weight_decay": cfg.weight_decay},
        "refinement": {"lr": cfg.r_lr, "weight_decay": cfg.weight_decay},
        "ssl_head": {"lr": cfg.lr, "weight_decay": cfg.weight_decay},
        "guide": {"lr": cfg.lr, "weight_decay": cfg.weight_decay},
        "generator": {"lr": cfg.g_lr or gan.g_lr, "betas": betas},
        "discriminator": {"lr": cfg.d_lr or gan.d_lr, "betas": betas},
    }
    optimizers: dict[str, torch.optim.Optimizer] = {}
    for name, module in models.parts().items():
        trainable = [p for p in module.parameters() if p.requires_grad]
        if trainable:
            optimizers[name] = torch.optim.Adam(trainable, **settings[name])
    schedulers: dict[str, Any] = {}
    if cfg.schedule == "cosine":
        schedulers = {
            name: torch.optim.lr_scheduler.CosineAnnealingLR(optimizers[name], T_max=cfg.epochs)
            for name in ("encoder", "decoders", "refinement", "ssl_head", "guide")
            if name in optimizers
        }
    return JointOptimizers(optimizers, schedulers)
