"""The six steps of one joint MGM iteration on a labelled batch (``mgm-reference.md``).

1. ``dense``: the dense task losses update the encoder and the decoders.
2. ``scene_real``: R on M's predictions of the real batch; scene cross-entropy updates R and the encoder.
3. ``ssl_real``: SimCLR (or reconstruction) on the real images updates the encoder and the SSL head.
4. ``gan``: ``mgm.gan_rounds`` rounds of D step(s) on real vs ``G(z + proj(E(x)), scene)``, then a G
   step that updates G, the guide projection and the encoder (train_gan's hinge loss, DiffAugment and
   instance noise). The authors' code runs 2 rounds.
5. ``scene_weak``: scene cross-entropy of R (frozen) on M's predictions of the weak images updates
   the encoder only.
6. ``ssl_weak``: the SSL loss on the weak images updates the encoder and the SSL head.
7. ``consistency_weak`` (XTasC-Net as M with ``loss.weak_consistency``): the cross-task consistency
   loss on the weak images, which needs no labels, updates the encoder and the head (decoders and
   transfer networks).

The weak images of steps 5-6 (synthetic from G with the batch's scene labels, or real images of the
``weak`` split) are drawn once per iteration, after step 4, without changing any state.

Each step zero-grads and steps exactly its parts' optimizers. Parameters of the other parts have
``requires_grad`` off during the step (no gradient is computed for them) and the buffers of the
other parts (batch-norm statistics, spectral-norm vectors) are restored afterwards, so a step
changes the state of its own parts and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.config import Params
from pipeline.errors import ParamsError
from pipeline.train.gan.adversarial import discriminator_loss, ema_decay_at, generator_loss, update_ema
from pipeline.train.mgm_models import JointModels, JointOptimizers, trains_generator
from pipeline.train.ssl import BatchAugment, ssl_loss

STEPS = ("dense", "scene_real", "ssl_real", "gan", "weak_images", "scene_weak", "ssl_weak")
"""The paper's steps in order (``weak_images`` draws the images of steps 5-6; it updates nothing)."""
ALL_STEPS = (*STEPS, "consistency_weak")
""":data:`STEPS` and the optional step 7 (XTasC-Net's consistency on the weak images), in order."""

STEP_PARTS: dict[str, tuple[str, ...]] = {
    "dense": ("encoder", "decoders"),
    "scene_real": ("encoder", "refinement"),
    "ssl_real": ("encoder", "ssl_head"),
    "gan": ("encoder", "generator", "guide", "discriminator"),
    "weak_images": (),
    "scene_weak": ("encoder",),
    "ssl_weak": ("encoder", "ssl_head"),
    "consistency_weak": ("encoder", "decoders"),
}
"""The parts each step updates (its optimizers); every other part is left untouched."""

M_PARTS = ("encoder", "decoders")
"""The parts of the multi-task network M (whose batch-norm statistics evaluation uses)."""


@dataclass(frozen=True)
class StepSettings:
    """What the steps need from the params."""

    ssl: str
    temperature: float
    scene_weight: float
    ssl_weight: float
    d_steps: int
    gan_rounds: int
    gan_encoder: bool
    bn_mode: str
    diffaugment: tuple[str, ...]
    instance_noise: float
    ema_decay: float
    weak_per_labelled: float
    encoder_lr_factor: float = 1.0
    """Multiplier of the encoder's learning rate in the auxiliary steps (2, 3, 5, 6): the warm-up."""

    @classmethod
    def from_params(cls, params: Params) -> StepSettings:
        cfg, gan = params.mgm, params.gan
        return cls(
            ssl=cfg.ssl,
            temperature=params.ssl.temperature,
            scene_weight=cfg.scene_weight,
            ssl_weight=cfg.ssl_weight,
            d_steps=cfg.d_steps,
            gan_rounds=cfg.gan_rounds,
            gan_encoder=cfg.gan_encoder,
            bn_mode=cfg.bn_mode,
            diffaugment=tuple(gan.diffaugment),
            instance_noise=gan.instance_noise,
            ema_decay=gan.ema_decay,
            weak_per_labelled=cfg.synthetic_per_labelled,
        )

    def warmed_up(self, factor: float) -> StepSettings:
        """These settings with the encoder's step size in the auxiliary steps scaled by ``factor``.

        The step size, not the loss weight: under Adam a scaled loss moves the parameters about as
        far (Adam normalises the gradient), and the encoder's one Adam state would still make a
        momentum step in the dense direction at every auxiliary step. R and the SSL head train at
        their full rate throughout."""
        if factor >= 1.0:
            return self
        return replace(self, encoder_lr_factor=factor)

    def kept_statistics(self, step: str) -> tuple[str, ...]:
        """Parts whose batch-norm statistics ``step`` must leave as they were: M's, in every step but
        ``dense`` when ``bn_mode`` is ``dense``."""
        return M_PARTS if self.bn_mode == "dense" and step != "dense" else ()

    def weak_count(self, batch_size: int) -> int:
        """Weak images per iteration: ``weak_per_labelled`` x the batch, at least 2 (batch norm, SimCLR)."""
        return max(2, round(self.weak_per_labelled * batch_size))


def warmup_factor(iteration: int, iterations_per_epoch: int | None, warmup_epochs: float) -> float:
    """The warm-up factor at ``iteration`` (0-based): linear from 0 at the first iteration to 1
    after ``warmup_epochs`` epochs; 1 throughout without a warm-up."""
    if warmup_epochs <= 0:
        return 1.0
    if not iterations_per_epoch:
        raise ParamsError(
            "mgm.aux_warmup_epochs: the length of an epoch is unknown (the train shards have no "
            "sample counts in their manifest, or no full batch); set it to 0 or reshard"
        )
    return min(1.0, iteration / (warmup_epochs * iterations_per_epoch))


@contextmanager
def scaled_learning_rate(optimizer: torch.optim.Optimizer | None, factor: float) -> Iterator[None]:
    """``optimizer``'s learning rates multiplied by ``factor`` inside the block (restored on exit)."""
    if optimizer is None or factor == 1.0:
        yield
        return
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr


def active_steps(params: Params) -> tuple[str, ...]:
    """The steps the variant runs (see the module docstring and ``mgm.*`` switches)."""
    cfg = params.mgm
    weak = cfg.weak != "none"
    consistency = (
        weak
        and params.loss.weak_consistency
        and params.model.architecture == "xtasc"
        and params.model.xtasc.consistency_weight > 0
    )
    wanted = {
        "dense": True,
        "scene_real": cfg.refinement,
        "ssl_real": cfg.ssl != "none",
        "gan": trains_generator(params),
        "weak_images": weak and (cfg.refinement or cfg.ssl != "none" or consistency),
        "scene_weak": weak and cfg.refinement,
        "ssl_weak": weak and cfg.ssl != "none",
        "consistency_weak": consistency,
    }
    return tuple(step for step in ALL_STEPS if wanted[step])


# ----------------------------------------------------------------------------- isolation


@contextmanager
def gradients_for(models: JointModels, trained: Sequence[str]) -> Iterator[None]:
    """``requires_grad`` only on the parameters of the ``trained`` parts (restored on exit)."""
    parts = models.parts()
    flags = {name: [p.requires_grad for p in module.parameters()] for name, module in parts.items()}
    for name, module in parts.items():
        for param, flag in zip(module.parameters(), flags[name]):
            param.requires_grad_(flag and name in trained)
    try:
        yield
    finally:
        for name, module in parts.items():
            for param, flag in zip(module.parameters(), flags[name]):
                param.requires_grad_(flag)


@contextmanager
def updating(
    models: JointModels, trained: Sequence[str], keep_statistics: Sequence[str] = ()
) -> Iterator[None]:
    """:func:`gradients_for` ``trained``, and the other parts' buffers (batch-norm statistics,
    spectral-norm vectors) restored on exit, so only the ``trained`` parts change. The buffers of
    the parts in ``keep_statistics`` are restored too although their parameters train (``bn_mode``
    ``dense``)."""
    others = {
        name: module
        for name, module in models.parts().items()
        if name not in trained or name in keep_statistics
    }
    saved = {name: [b.detach().clone() for b in module.buffers()] for name, module in others.items()}
    try:
        with gradients_for(models, trained):
            yield
    finally:
        with torch.no_grad():
            for name, module in others.items():
                for buffer, value in zip(module.buffers(), saved[name]):
                    buffer.copy_(value)


def apply_update(loss: Tensor, optimizers: JointOptimizers, parts: Sequence[str]) -> None:
    """Zero the parts' gradients, back-propagate ``loss``, step the parts' optimizers, drop the grads."""
    present = [part for part in parts if part in optimizers]
    for part in present:
        optimizers[part].zero_grad(set_to_none=True)
    loss.backward()
    for part in present:
        optimizers[part].step()
        optimizers[part].zero_grad(set_to_none=True)


def _encoder_optimizer(optimizers: JointOptimizers) -> torch.optim.Optimizer | None:
    return optimizers["encoder"] if "encoder" in optimizers else None  # noqa: SIM401 (not a Mapping)


def to_unit_range(images: Tensor) -> Tensor:
    """GAN images in [-1, 1] -> M's input range [0, 1]."""
    return (images + 1.0) / 2.0


def to_gan_range(images: Tensor) -> Tensor:
    """M's [0, 1] images -> the GAN's [-1, 1]."""
    return images * 2.0 - 1.0


# ----------------------------------------------------------------------------- the steps


def step_dense(
    models: JointModels, optimizers: JointOptimizers, batch: Mapping[str, Any]
) -> dict[str, float]:
    """Step 1: dense losses on the labelled batch -> encoder + decoders."""
    with updating(models, STEP_PARTS["dense"]):
        images = batch["rgb"]
        decoded = models.net.decode_training(models.net.encode(images), (images.shape[-2], images.shape[-1]))
        sums = models.criterion.task_losses(decoded.outputs, batch)
        loss = models.criterion.combine({task: value.mean() for task, value in sums.items()})
        if decoded.auxiliary:  # MTI-Net's deep supervision, XTasC-Net's transfer losses
            auxiliary = models.criterion.auxiliary_losses(decoded, batch)
            loss = loss + models.criterion.combine_auxiliary(decoded, auxiliary)
        apply_update(loss, optimizers, STEP_PARTS["dense"])
    stats = {f"dense_{task}": float(value.mean().detach()) for task, value in sums.items()}
    return {"dense": float(loss.detach()), **stats}


def _scene_step(
    models: JointModels,
    optimizers: JointOptimizers,
    images: Tensor,
    labels: Tensor,
    settings: StepSettings,
    name: str,
) -> dict[str, float]:
    """Scene cross-entropy of R on M's predictions, applied to the parts ``STEP_PARTS[name]`` names."""
    assert models.refinement is not None
    with updating(models, STEP_PARTS[name], settings.kept_statistics(name)):
        logits = models.refinement(models.net(images))
        loss = settings.scene_weight * F.cross_entropy(logits, labels)
        with scaled_learning_rate(_encoder_optimizer(optimizers), settings.encoder_lr_factor):
            apply_update(loss, optimizers, STEP_PARTS[name])
    accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
    return {name: float(loss.detach()), name.replace("scene_", "scene_acc_"): float(accuracy)}


def step_scene_real(
    models: JointModels, optimizers: JointOptimizers, batch: Mapping[str, Any], settings: StepSettings
) -> dict[str, float]:
    """Step 2: R on M's predictions of the real batch, scene cross-entropy -> R + encoder."""
    return _scene_step(models, optimizers, batch["rgb"], batch["scene"], settings, "scene_real")


def _ssl_step(
    models: JointModels,
    optimizers: JointOptimizers,
    images: Tensor,
    settings: StepSettings,
    augment: BatchAugment,
    name: str,
) -> dict[str, float]:
    with updating(models, STEP_PARTS[name], settings.kept_statistics(name)):
        loss = settings.ssl_weight * ssl_loss(
            settings.ssl, models.net, models.ssl_head, images, augment, settings.temperature
        )
        with scaled_learning_rate(_encoder_optimizer(optimizers), settings.encoder_lr_factor):
            apply_update(loss, optimizers, STEP_PARTS[name])
    return {name: float(loss.detach())}


def step_ssl_real(
    models: JointModels,
    optimizers: JointOptimizers,
    batch: Mapping[str, Any],
    settings: StepSettings,
    augment: BatchAugment,
) -> dict[str, float]:
    """Step 3: SSL on the real images -> encoder + SSL head."""
    return _ssl_step(models, optimizers, batch["rgb"], settings, augment, "ssl_real")


def step_gan(
    models: JointModels,
    optimizers: JointOptimizers,
    batch: Mapping[str, Any],
    settings: StepSettings,
    iteration: int,
) -> dict[str, float]:
    """Step 4: ``gan_rounds`` rounds (the authors' code: 2) of ``d_steps`` D updates on real vs guided
    fakes, then one G update (G, guide, encoder) and one EMA update; the losses are round means."""
    guided = models.guided()
    assert guided is not None and models.discriminator is not None
    assert models.generator is not None and models.generator_ema is not None
    discriminator = models.discriminator
    images, labels = batch["rgb"], batch["scene"]
    real = to_gan_range(images)
    latent = guided.config.latent_dim
    policy, noise = settings.diffaugment, settings.instance_noise
    rounds = settings.gan_rounds
    d_updates = rounds * settings.d_steps
    g_parts = ("generator", "guide", "encoder") if settings.gan_encoder else ("generator", "guide")
    trained = (
        STEP_PARTS["gan"] if settings.gan_encoder else tuple(p for p in STEP_PARTS["gan"] if p != "encoder")
    )
    stats = {"d_loss": 0.0, "d_real": 0.0, "d_fake": 0.0, "g_loss": 0.0}
    with updating(models, trained, settings.kept_statistics("gan")):
        for gan_round in range(rounds):
            # One encoder pass per round serves its D steps (detached) and its G step (with the graph
            # to the encoder): the encoder does not change in between, so the authors' second pass
            # would give the same features.
            with gradients_for(models, g_parts):
                features = models.net.features(images)
            for _ in range(settings.d_steps):
                with gradients_for(models, ("discriminator",)):
                    with torch.no_grad():
                        z = torch.randn(len(labels), latent, device=real.device)
                        fake = guided(z, labels, features.detach())
                    loss_d, logits = discriminator_loss(discriminator, real, fake, labels, policy, noise)
                    apply_update(loss_d, optimizers, ("discriminator",))
                stats["d_loss"] += float(loss_d.detach()) / d_updates
                stats["d_real"] += logits["d_real"] / d_updates
                stats["d_fake"] += logits["d_fake"] / d_updates
            with gradients_for(models, g_parts):
                z = torch.randn(len(labels), latent, device=real.device)
                fake = guided(z, labels, features)  # no graph to a frozen encoder
                loss_g = generator_loss(discriminator, fake, labels, policy, noise)
                apply_update(loss_g, optimizers, g_parts)
            stats["g_loss"] += float(loss_g.detach()) / rounds
            g_update = iteration * rounds + gan_round  # the EMA warm-up counts G updates
            update_ema(models.generator_ema, models.generator, ema_decay_at(g_update, settings.ema_decay))
    return stats


WeakSource = Callable[[int], tuple[Tensor, Tensor]]
"""``count`` -> (images in [0, 1], scene labels) of the weakly labelled real split."""


def draw_weak_images(
    models: JointModels, batch: Mapping[str, Any], settings: StepSettings, weak_source: WeakSource | None
) -> tuple[Tensor, Tensor]:
    """The images of steps 5-6 in [0, 1] and their scene labels; changes no state.

    Synthetic: ``weak_count`` images of G with the batch's scene labels (cycled), guided by the
    batch's own images when G trains jointly. Real: the next images of the ``weak`` split.
    """
    count = settings.weak_count(len(batch["scene"]))
    if weak_source is not None:
        return weak_source(count)
    if models.generator is None:
        raise ValueError("draw_weak_images: no generator and no weak real images (mgm.weak=none)")
    index = torch.arange(count, device=batch["scene"].device) % len(batch["scene"])
    labels = batch["scene"][index]
    with updating(models, ()), torch.no_grad():
        z = torch.randn(count, models.generator.config.latent_dim, device=labels.device)
        guided = models.guided()
        if guided is None:
            fake = models.generator(z, labels)
        else:
            fake = guided(z, labels, models.net.features(batch["rgb"][index]))
    return to_unit_range(fake).clamp(0.0, 1.0), labels


def step_scene_weak(
    models: JointModels, optimizers: JointOptimizers, images: Tensor, labels: Tensor, settings: StepSettings
) -> dict[str, float]:
    """Step 5: scene cross-entropy through R (frozen) on the weak images -> encoder only."""
    return _scene_step(models, optimizers, images, labels, settings, "scene_weak")


def step_ssl_weak(
    models: JointModels,
    optimizers: JointOptimizers,
    images: Tensor,
    settings: StepSettings,
    augment: BatchAugment,
) -> dict[str, float]:
    """Step 6: SSL on the weak images -> encoder + SSL head."""
    return _ssl_step(models, optimizers, images, settings, augment, "ssl_weak")


def step_consistency_weak(
    models: JointModels, optimizers: JointOptimizers, images: Tensor, settings: StepSettings
) -> dict[str, float]:
    """Step 7: XTasC-Net's cross-task consistency on the weak images -> encoder + head."""
    name = "consistency_weak"
    with updating(models, STEP_PARTS[name], settings.kept_statistics(name)):
        size = (images.shape[-2], images.shape[-1])
        decoded = models.net.decode_training(models.net.encode(images), size)
        decoded = models.criterion.consistency_only(decoded)
        if not decoded.auxiliary:
            raise ValueError("consistency_weak: M has no consistency terms (model.architecture=xtasc only)")
        loss = models.criterion.combine_auxiliary(decoded, models.criterion.auxiliary_losses(decoded, {}))
        apply_update(loss, optimizers, STEP_PARTS[name])
    return {name: float(loss.detach())}


# ----------------------------------------------------------------------------- one iteration


def joint_iteration(
    models: JointModels,
    optimizers: JointOptimizers,
    batch: Mapping[str, Any],
    settings: StepSettings,
    augment: BatchAugment,
    steps: Sequence[str],
    iteration: int,
    weak_source: WeakSource | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, float]:
    """Run ``steps`` (a subsequence of :data:`ALL_STEPS`) on one labelled batch; return their losses.

    ``timings`` (when given) accumulates the wall-clock seconds of each step (CUDA synchronised).
    """
    models.train()
    stats: dict[str, float] = {}
    weak: tuple[Tensor, Tensor] | None = None
    device = batch["rgb"].device
    for name in steps:
        started = time.perf_counter()
        if name == "dense":
            stats |= step_dense(models, optimizers, batch)
        elif name == "scene_real":
            stats |= step_scene_real(models, optimizers, batch, settings)
        elif name == "ssl_real":
            stats |= step_ssl_real(models, optimizers, batch, settings, augment)
        elif name == "gan":
            stats |= step_gan(models, optimizers, batch, settings, iteration)
        elif name == "weak_images":
            weak = draw_weak_images(models, batch, settings, weak_source)
        elif name == "scene_weak":
            assert weak is not None, "weak_images must run before scene_weak"
            stats |= step_scene_weak(models, optimizers, *weak, settings)
        elif name == "ssl_weak":
            assert weak is not None, "weak_images must run before ssl_weak"
            stats |= step_ssl_weak(models, optimizers, weak[0], settings, augment)
        elif name == "consistency_weak":
            assert weak is not None, "weak_images must run before consistency_weak"
            stats |= step_consistency_weak(models, optimizers, weak[0], settings)
        else:
            raise ValueError(f"unknown MGM step {name!r} (known: {', '.join(ALL_STEPS)})")
        if timings is not None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    return stats


def needs_weak_real(params: Params) -> bool:
    """Steps 5-6 read the ``weak`` split of the real shards (``mgm.weak`` is ``real``)."""
    return params.mgm.weak == "real" and "weak_images" in active_steps(params)
