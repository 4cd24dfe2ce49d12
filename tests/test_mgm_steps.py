"""One joint MGM iteration: each step changes exactly its own parts; the variant switches pick the steps."""

from __future__ import annotations

import pytest
import torch

from pipeline.data.reader import ShardDataset, collate
from pipeline.train.mgm import WeakRealImages
from pipeline.train.mgm_models import build_joint_models, build_optimizers
from pipeline.train.mgm_steps import (
    STEP_PARTS,
    STEPS,
    StepSettings,
    active_steps,
    draw_weak_images,
    joint_iteration,
    step_consistency_weak,
    step_scene_weak,
    step_ssl_weak,
)
from pipeline.train.ssl import BatchAugment
from tests._tiny import mgm_params, mgm_project

CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def root(tmp_path_factory, one_thread):
    return mgm_project(tmp_path_factory.mktemp("mgm_steps")).root


def _batch(root, offset=0):
    items = list(ShardDataset(root / "real", "train"))
    return collate(items[offset : offset + 4])


def _setup(root, *overrides):
    params = mgm_params(root, "unused", *overrides)
    models = build_joint_models(params, 13, _scene_names(root), 32, CPU)
    weak = WeakRealImages(root / "real", 0, CPU) if params.mgm.weak == "real" else None
    return params, models, build_optimizers(params, models), StepSettings.from_params(params), weak


def _scene_names(root):
    from pipeline.data.reader import read_summary

    return read_summary(root / "real")["scene_names"]


def _state(models):
    """Part -> {name: tensor} of parameters and buffers (the EMA generator as its own part)."""
    state = {
        name: {k: v.detach().clone() for k, v in m.state_dict().items()} for name, m in models.parts().items()
    }
    if models.generator_ema is not None:
        state["generator_ema"] = {k: v.clone() for k, v in models.generator_ema.state_dict().items()}
    return state


def _changed(before, after, parameter_names):
    """Parts with at least one changed parameter, and parts with any changed entry (params or buffers)."""
    params_changed, anything_changed = set(), set()
    for part, entries in before.items():
        for key, value in entries.items():
            if not torch.equal(value, after[part][key]):
                anything_changed.add(part)
                if key in parameter_names[part]:
                    params_changed.add(part)
    return params_changed, anything_changed


def _parameter_names(models):
    names = {part: {n for n, _ in m.named_parameters()} for part, m in models.parts().items()}
    if models.generator_ema is not None:
        names["generator_ema"] = {n for n, _ in models.generator_ema.named_parameters()}
    return names


@pytest.mark.parametrize("guide", ["add", "concat"])
def test_each_step_changes_exactly_its_own_parts(root, guide):
    params, models, optimizers, settings, _ = _setup(root, f"mgm.guide={guide}")
    assert set(models.parts()) == {
        "encoder", "decoders", "refinement", "ssl_head", "generator", "guide", "discriminator",
    }  # fmt: skip
    assert active_steps(params) == STEPS
    augment = BatchAugment(32)
    names = _parameter_names(models)
    torch.manual_seed(0)
    # a first iteration gives every Adam a non-zero state (momentum, weight decay would move params)
    joint_iteration(models, optimizers, _batch(root), settings, augment, STEPS, 0)
    batch = _batch(root, 4)
    expected = {step: set(parts) for step, parts in STEP_PARTS.items()}
    expected["gan"] |= {"generator_ema"}
    weak = None
    for step in STEPS:
        before = _state(models)
        stats: dict[str, float] = {}
        if step == "weak_images":
            weak = draw_weak_images(models, batch, settings, None)
            assert weak[0].shape == (4, 3, 32, 32) and 0 <= float(weak[0].min()) <= float(weak[0].max()) <= 1
            assert torch.equal(weak[1], batch["scene"])  # the batch's scene labels
        elif step == "scene_weak":
            stats = step_scene_weak(models, optimizers, *weak, settings)
        elif step == "ssl_weak":
            stats = step_ssl_weak(models, optimizers, weak[0], settings, augment)
        else:
            stats = joint_iteration(models, optimizers, batch, settings, augment, (step,), 1)
        params_changed, anything_changed = _changed(before, _state(models), names)
        assert params_changed == expected[step], step
        assert anything_changed == expected[step], step  # buffers (BN, SN) of the other parts stay too
        assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert all(p.requires_grad for part in ("encoder", "generator", "discriminator") for p in
               models.parts()[part].parameters())  # fmt: skip
    assert all(p.grad is None for m in models.parts().values() for p in m.parameters())


def test_scene_weak_step_moves_only_the_encoder_even_with_decoder_momentum(root):
    """R and the decoders have Adam state with weight decay; step 5 still leaves them exactly as they were."""
    _, models, optimizers, settings, _ = _setup(root, "mgm.weight_decay=0.1")
    torch.manual_seed(1)
    augment = BatchAugment(32)
    for iteration in range(2):
        joint_iteration(models, optimizers, _batch(root, 4 * iteration), settings, augment, STEPS, iteration)
    assert optimizers["decoders"].state and optimizers["refinement"].state
    decoders = {k: v.clone() for k, v in models.net.decoders.state_dict().items()}
    refinement = {k: v.clone() for k, v in models.refinement.state_dict().items()}
    encoder = {k: v.clone() for k, v in models.net.encoder.state_dict().items()}
    stats = joint_iteration(
        models, optimizers, _batch(root, 8), settings, augment, ("weak_images", "scene_weak"), 2
    )
    assert set(stats) == {"scene_weak", "scene_acc_weak"}
    assert all(torch.equal(v, models.net.decoders.state_dict()[k]) for k, v in decoders.items())
    assert all(torch.equal(v, models.refinement.state_dict()[k]) for k, v in refinement.items())
    moved = [k for k, v in encoder.items() if not torch.equal(v, models.net.encoder.state_dict()[k])]
    assert len(moved) > len(encoder) // 2


VARIANTS = {
    (): ("dense", "scene_real", "ssl_real", "gan", "weak_images", "scene_weak", "ssl_weak"),
    ("mgm.ssl=recon",): ("dense", "scene_real", "ssl_real", "gan", "weak_images", "scene_weak", "ssl_weak"),
    ("mgm.ssl=none",): ("dense", "scene_real", "gan", "weak_images", "scene_weak"),
    ("mgm.refinement=false",): ("dense", "ssl_real", "gan", "weak_images", "ssl_weak"),
    ("mgm.joint=false",): ("dense", "scene_real", "ssl_real", "weak_images", "scene_weak", "ssl_weak"),
    ("mgm.weak=real",): ("dense", "scene_real", "ssl_real", "weak_images", "scene_weak", "ssl_weak"),
    ("mgm.weak=none",): ("dense", "scene_real", "ssl_real"),
    ("mgm.weak=none", "mgm.refinement=false", "mgm.ssl=none"): ("dense",),
}
PARTS_PRESENT = {
    (): {"refinement", "ssl_head", "generator", "guide", "discriminator"},
    ("mgm.ssl=recon",): {"refinement", "ssl_head", "generator", "guide", "discriminator"},
    ("mgm.ssl=none",): {"refinement", "generator", "guide", "discriminator"},
    ("mgm.refinement=false",): {"ssl_head", "generator", "guide", "discriminator"},
    ("mgm.joint=false",): {"refinement", "ssl_head", "generator"},
    ("mgm.weak=real",): {"refinement", "ssl_head"},
    ("mgm.weak=none",): {"refinement", "ssl_head"},
    ("mgm.weak=none", "mgm.refinement=false", "mgm.ssl=none"): set(),
}


@pytest.mark.parametrize("overrides", list(VARIANTS), ids=lambda o: ",".join(o) or "full")
def test_variant_switches_run_and_skip_the_right_steps(root, overrides):
    params, models, optimizers, settings, weak = _setup(root, *overrides)
    steps = active_steps(params)
    assert steps == VARIANTS[overrides]
    assert set(models.parts()) == {"encoder", "decoders"} | PARTS_PRESENT[overrides]
    generator = {k: v.clone() for k, v in models.generator.state_dict().items()} if models.generator else {}
    timings: dict[str, float] = {}
    torch.manual_seed(2)
    stats = joint_iteration(
        models, optimizers, _batch(root), settings, BatchAugment(32), steps, 0, weak, timings
    )
    assert list(timings) == list(steps)
    produced = {
        "scene_real": {"scene_real", "scene_acc_real"},
        "ssl_real": {"ssl_real"},
        "gan": {"d_loss", "d_real", "d_fake", "g_loss"},
        "scene_weak": {"scene_weak", "scene_acc_weak"},
        "ssl_weak": {"ssl_weak"},
    }
    wanted = {"dense", "dense_seg", "dense_depth", "dense_normal"}
    for step in steps:
        wanted |= produced.get(step, set())
    assert set(stats) == wanted
    if overrides == ("mgm.joint=false",):  # the pre-trained SAGAN stays frozen and in eval mode
        assert not models.generator.training
        assert all(torch.equal(v, models.generator.state_dict()[k]) for k, v in generator.items())


def _adam_steps(optimizer):
    """Updates an Adam optimizer has made (its per-parameter step count)."""
    counts = {int(state["step"]) for state in optimizer.state.values()}
    assert len(counts) <= 1
    return counts.pop() if counts else 0


@pytest.mark.parametrize("rounds, d_steps", [(1, 1), (2, 1), (2, 2)])
def test_gan_rounds_give_that_many_d_then_g_rounds_per_iteration(root, rounds, d_steps):
    """The authors' schedule: ``gan_rounds`` x (``d_steps`` D updates, then one G + guide + encoder step)."""
    _, models, optimizers, settings, _ = _setup(root, f"mgm.gan_rounds={rounds}", f"mgm.d_steps={d_steps}")
    ema_before = {k: v.clone() for k, v in models.generator_ema.state_dict().items()}
    encoder_passes = []
    hook = models.net.encoder.register_forward_hook(lambda *_: encoder_passes.append(1))
    torch.manual_seed(3)
    for iteration in range(2):
        stats = joint_iteration(
            models, optimizers, _batch(root), settings, BatchAugment(32), ("gan",), iteration
        )
    hook.remove()
    assert len(encoder_passes) == 2 * rounds  # one per round: its D steps and G step share it
    assert _adam_steps(optimizers["discriminator"]) == 2 * rounds * d_steps
    assert _adam_steps(optimizers["generator"]) == 2 * rounds
    assert _adam_steps(optimizers["guide"]) == 2 * rounds
    assert set(stats) == {"d_loss", "d_real", "d_fake", "g_loss"}
    assert all(torch.isfinite(torch.tensor(value)) for value in stats.values())
    assert any(not torch.equal(v, models.generator_ema.state_dict()[k]) for k, v in ema_before.items())


def _m_statistics(models):
    """M's batch-norm buffers (encoder and decoders), cloned."""
    return {
        f"{part}.{name}": value.clone()
        for part in ("encoder", "decoders")
        for name, value in models.parts()[part].named_buffers()
    }


@pytest.mark.parametrize("mode", ["dense", "authors"])
def test_in_dense_mode_only_the_dense_step_moves_m_batch_norm_statistics(root, mode):
    """bn_mode dense: a full iteration leaves M's statistics as the dense step alone leaves them;
    authors: the other steps' passes (views, weak images, the guide) move them further."""
    runs = []
    for steps in (STEPS, ("dense",)):
        _, models, optimizers, settings, _ = _setup(root, f"mgm.bn_mode={mode}")
        torch.manual_seed(4)
        joint_iteration(models, optimizers, _batch(root), settings, BatchAugment(32), steps, 0)
        runs.append(_m_statistics(models))
    full, dense_only = runs
    assert any("running_mean" in key for key in full)
    same = all(torch.equal(full[key], dense_only[key]) for key in full)
    assert same == (mode == "dense")


def test_recalibrate_computes_statistics_from_the_given_images_only(root):
    from pipeline.train.bn_statistics import batch_norms, recalibrate

    _, models, optimizers, settings, _ = _setup(root, "mgm.bn_mode=recalibrate")
    torch.manual_seed(5)
    joint_iteration(models, optimizers, _batch(root), settings, BatchAugment(32), STEPS, 0)
    net = models.net.eval()
    first = batch_norms(net.encoder)[0]
    seen = []
    hook = first.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach().clone()))
    images = [_batch(root, 0)["rgb"], _batch(root, 4)["rgb"]]
    with torch.no_grad():
        net(torch.cat(images))  # eval mode: the first layer's input does not depend on any statistics
    expected_mean = seen[0].mean(dim=(0, 2, 3))
    hook.remove()
    for corrupt in (0.0, 50.0):  # the result does not depend on the statistics before
        with torch.no_grad():
            for layer in batch_norms(net):
                layer.running_mean.fill_(corrupt)
        assert recalibrate(net, images) == 8
        assert torch.allclose(first.running_mean, expected_mean, atol=1e-5)
        assert not net.training and all(layer.momentum == 0.1 for layer in batch_norms(net))
        if corrupt == 0.0:
            reference = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            assert all(torch.allclose(v, reference[k], atol=1e-5) for k, v in net.state_dict().items())


@pytest.mark.parametrize("gan_encoder", [True, False])
def test_gan_encoder_switch_decides_whether_step_4_moves_the_encoder(root, gan_encoder):
    """mgm.gan_encoder=false (an ablation): step 4 trains G, the guide and D, never the encoder."""
    _, models, optimizers, settings, _ = _setup(root, f"mgm.gan_encoder={str(gan_encoder).lower()}")
    names = _parameter_names(models)
    torch.manual_seed(6)
    before = _state(models)
    joint_iteration(models, optimizers, _batch(root), settings, BatchAugment(32), ("gan",), 0)
    params_changed, anything_changed = _changed(before, _state(models), names)
    expected = {"generator", "guide", "discriminator", "generator_ema"} | (
        {"encoder"} if gan_encoder else set()
    )
    assert params_changed == expected
    assert anything_changed == expected


XTASC = ["model.architecture=xtasc", "model.xtasc.widths=[4, 4, 8]", "model.xtasc.pairs=[[seg, depth]]"]


@pytest.mark.parametrize("weak_consistency", [True, False])
def test_xtasc_consistency_on_weak_images_is_a_switch_that_moves_encoder_and_head(root, weak_consistency):
    switch = f"loss.weak_consistency={weak_consistency}"
    params, models, optimizers, settings, _ = _setup(root, *XTASC, switch)
    steps = active_steps(params)
    assert (steps[-1] == "consistency_weak") == weak_consistency
    assert "consistency_weak" not in active_steps(_setup(root, "loss.weak_consistency=true")[0])  # shared M
    if not weak_consistency:
        return
    torch.manual_seed(6)
    joint_iteration(models, optimizers, _batch(root), settings, BatchAugment(32), steps, 0)  # Adam states
    names = _parameter_names(models)
    weak = draw_weak_images(models, _batch(root, 4), settings, None)
    before = _state(models)
    stats = step_consistency_weak(models, optimizers, weak[0], settings)
    params_changed, anything_changed = _changed(before, _state(models), names)
    assert params_changed == anything_changed == {"encoder", "decoders"}
    assert set(stats) == {"consistency_weak"} and stats["consistency_weak"] > 0
    transfer = [name for name in names["decoders"] if "transfers.seg_to_depth" in name]
    moved = [n for n in transfer if not torch.equal(before["decoders"][n], _state(models)["decoders"][n])]
    assert transfer and moved  # the transfer network learns from the weak images


def test_auxiliary_warm_up_ramps_from_zero_and_needs_the_epoch_length():
    from pipeline.errors import ParamsError
    from pipeline.train.mgm_steps import warmup_factor

    assert warmup_factor(0, 10, 0.0) == 1.0  # no warm-up: the full rate from the first iteration
    assert warmup_factor(0, None, 0.0) == 1.0
    assert [warmup_factor(i, 10, 2.0) for i in (0, 5, 10, 20, 35)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    with pytest.raises(ParamsError, match=r"mgm\.aux_warmup_epochs: the length of an epoch is unknown"):
        warmup_factor(3, None, 2.0)


def test_a_warmed_up_iteration_holds_the_encoder_in_the_auxiliary_steps_only(root):
    """Factor 0: steps 2 and 3 leave the encoder exactly as it was (its step size is 0) while R and
    the SSL head train at their full rate; the dense step still moves the encoder; the learning
    rates are restored afterwards."""
    _, models, optimizers, settings, _ = _setup(root, "mgm.weak=none")
    assert settings.warmed_up(1.0) is settings
    zero = settings.warmed_up(0.0)
    assert zero.encoder_lr_factor == 0.0 and zero.scene_weight == settings.scene_weight
    rates = [group["lr"] for group in optimizers["encoder"].param_groups]
    torch.manual_seed(0)
    encoder = {k: v.detach().clone() for k, v in models.net.encoder.named_parameters()}
    refinement = [p.detach().clone() for p in models.refinement.parameters()]
    head = [p.detach().clone() for p in models.ssl_head.parameters()]
    stats = joint_iteration(
        models, optimizers, _batch(root), zero, BatchAugment(32), ("scene_real", "ssl_real"), 0
    )
    after = dict(models.net.encoder.named_parameters())
    assert all(torch.equal(value, after[key]) for key, value in encoder.items())
    assert any(not torch.equal(a, b) for a, b in zip(refinement, models.refinement.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(head, models.ssl_head.parameters()))
    assert stats["scene_real"] > 0.5 and stats["ssl_real"] > 0.5  # the losses are the full ones
    assert [group["lr"] for group in optimizers["encoder"].param_groups] == rates
    joint_iteration(models, optimizers, _batch(root), zero, BatchAugment(32), ("dense",), 1)
    moved = dict(models.net.encoder.named_parameters())
    assert any(not torch.equal(value, moved[key]) for key, value in encoder.items())


def test_ssl_hidden_gives_the_joint_loop_a_projection_mlp(root):
    from torch import nn

    _, models, _, _, _ = _setup(root, "ssl.hidden=32", "mgm.weak=none")
    linears = [module for module in models.ssl_head.modules() if isinstance(module, nn.Linear)]
    assert [layer.out_features for layer in linears] == [32, models.ssl_head.project[-1].out_features]
