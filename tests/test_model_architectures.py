"""model.architecture: shared, MTI-Net and XTasC-Net heads: shapes, deep supervision, the detached
consistency target, params errors, and toy end-to-end runs of train_mt, train_mgm and evaluate."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import load_params
from pipeline.errors import ParamsError
from pipeline.models.multitask import build_multitask_net
from pipeline.train.builders import build_loss
from tests._tiny import TinyProject, make_shards, mgm_params, mgm_project

TASKS3 = ["seg", "depth", "normal"]
SMALL = {"encoder": "halfwidth34", "encoder_widths": [8, 8, 16, 16], "decoder_channels": [16, 8, 8, 8, 8]}
MTI_SMALL = {"channels": [4, 8, 8, 16], "se_reduction": 4}
TOY_MTI = ["model.architecture=mti", "model.mti.scales=[2, 4, 8, 16]", "model.mti.channels=[4, 8, 8, 16]"]
TOY_XTASC = ["model.architecture=xtasc", "model.xtasc.widths=[4, 4, 8]", "model.xtasc.alignment_weight=0.01"]


def _net(architecture: str, resolution: int, **options):
    scales = [2, 4, 8, 16] if resolution == 32 else [4, 8, 16, 32]
    kwargs = {"mti": {**MTI_SMALL, "scales": scales}} if architecture == "mti" else {}
    kwargs |= {"xtasc": {"widths": [4, 4, 8], **options}} if architecture == "xtasc" else {}
    return build_multitask_net(TASKS3, 13, architecture=architecture, **SMALL, **kwargs)


@pytest.mark.parametrize("architecture", ["shared", "unet", "mti", "xtasc"])
@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_output_shapes_per_architecture(architecture, resolution):
    torch.manual_seed(0)
    net = _net(architecture, resolution)
    out = net(torch.rand(2, 3, resolution, resolution))
    assert {task: tuple(value.shape) for task, value in out.items()} == {
        "seg": (2, 13, resolution, resolution),
        "depth": (2, 1, resolution, resolution),
        "normal": (2, 3, resolution, resolution),
    }
    assert torch.allclose(out["normal"].norm(dim=1), torch.ones(2, resolution, resolution), atol=1e-4)
    assert net.features(torch.rand(2, 3, resolution, resolution)).shape == (2, 16)


def test_mti_deep_supervision_covers_every_scale_and_task_and_enters_the_loss():
    torch.manual_seed(0)
    net = _net("mti", 64)
    images = torch.rand(2, 3, 64, 64)
    decoded = net.decode_training(net.encode(images), (64, 64))
    names = [aux.name for aux in decoded.auxiliary]
    assert names == list(net.auxiliary_names)
    assert sorted(names) == sorted(f"mti_s{s}_{t}" for s in (4, 8, 16, 32) for t in TASKS3)
    for aux in decoded.auxiliary:
        channels = {"seg": 13, "depth": 1, "normal": 3}[aux.task]
        assert aux.output.shape == (2, channels, 64, 64) and aux.supervision == "label"
    assert all(
        aux.output.norm(dim=1).sub(1).abs().max() < 1e-4 for aux in decoded.auxiliary if aux.task == "normal"
    )
    # the per-scale predictions differ from each other and from the final ones
    seg = [aux.output for aux in decoded.auxiliary if aux.task == "seg"]
    assert not torch.allclose(seg[0], seg[1]) and not torch.allclose(seg[-1], decoded.outputs["seg"])

    params = load_params(None, ["data.resolution=64", "model.architecture=mti"])
    criterion = build_loss(params, TASKS3)
    batch = {
        "seg": torch.randint(0, 13, (2, 64, 64)),
        "depth": torch.rand(2, 1, 64, 64) + 0.5,
        "depth_valid": torch.ones(2, 1, 64, 64, dtype=torch.bool),
        "normal": torch.nn.functional.normalize(torch.randn(2, 3, 64, 64), dim=1),
    }
    sums = criterion.auxiliary_losses(decoded, batch)
    assert set(sums) == set(names)
    first = decoded.auxiliary[0]
    expected = criterion.losses[first.task](first.output, batch, "l1").mean()
    assert torch.allclose(sums[first.name].mean(), expected)
    total = criterion.combine_auxiliary(decoded, sums)
    assert torch.allclose(total, sum(value.mean() for value in sums.values()))  # weights 1, 1


def test_evaluation_pass_computes_no_auxiliary_outputs():
    net = _net("xtasc", 32)
    decoded = net.decode_training(net.encode(torch.rand(2, 3, 32, 32)), (32, 32), auxiliary=False)
    assert decoded.auxiliary == [] and set(decoded.outputs) == set(TASKS3)


def test_xtasc_consistency_target_carries_no_gradient():
    torch.manual_seed(0)
    net = build_multitask_net(
        TASKS3, 13, architecture="xtasc", **SMALL,
        xtasc={"pairs": [["seg", "depth"]], "widths": [4, 4, 8], "consistency_weight": 1.0},
    )  # fmt: skip
    assert list(net.decoders.transfers) == ["seg_to_depth"]
    params = load_params(None, ["data.resolution=32"])
    criterion = build_loss(params, TASKS3)
    decoded = net.decode_training(net.encode(torch.rand(2, 3, 32, 32)), (32, 32))
    (aux,) = decoded.auxiliary
    assert (aux.name, aux.task, aux.supervision) == ("xt_seg_to_depth", "depth", "prediction")
    sums = criterion.auxiliary_losses(decoded, {})  # needs no labels: the target is M's own depth
    expected = (aux.output - decoded.outputs["depth"].detach()).abs().mean()
    assert torch.allclose(sums[aux.name].mean(), expected)
    criterion.combine_auxiliary(decoded, sums).backward()

    def grads(module):
        return [p.grad for p in module.parameters()]

    assert all(g is None or not g.any() for g in grads(net.decoders.decoders["depth"]))  # the target
    assert any(g is not None and g.abs().sum() > 0 for g in grads(net.decoders.decoders["seg"]))  # the source
    assert any(g is not None and g.abs().sum() > 0 for g in grads(net.decoders.transfers))
    assert any(g is not None and g.abs().sum() > 0 for g in grads(net.encoder))


@pytest.mark.parametrize("weak_consistency", [False, True])
def test_xtasc_consistency_covers_a_mixed_batch_weak_rows_only_with_the_switch(weak_consistency):
    torch.manual_seed(1)
    net = build_multitask_net(
        TASKS3, 13, architecture="xtasc", **SMALL, xtasc={"pairs": [["seg", "depth"]], "widths": [4, 4, 8]}
    )
    params = load_params(None, ["data.resolution=32", f"loss.weak_consistency={weak_consistency}"])
    criterion = build_loss(params, TASKS3)
    decoded = net.decode_training(net.encode(torch.rand(3, 3, 32, 32)), (32, 32))
    labelled = torch.tensor([True, False, True])
    (aux,) = decoded.auxiliary
    total, count = criterion.auxiliary_losses(decoded, {"labelled": labelled})[aux.name]
    rows = slice(None) if weak_consistency else labelled
    error = (aux.output[rows] - decoded.outputs["depth"][rows].detach()).abs()
    assert int(count) == error.numel() == (3 if weak_consistency else 2) * 32 * 32
    assert torch.allclose(total, error.sum())
    none = criterion.auxiliary_losses(decoded, {"labelled": torch.zeros(3, dtype=torch.bool)})[aux.name]
    assert int(none.count) == (3 * 32 * 32 if weak_consistency else 0) and torch.isfinite(none.mean())


def test_xtasc_alignment_scores_the_transfer_against_the_labels_and_seg_targets_are_argmax():
    torch.manual_seed(0)
    net = build_multitask_net(
        TASKS3, 13, architecture="xtasc", **SMALL,
        xtasc={"pairs": [["depth", "seg"]], "widths": [4, 4, 8], "consistency_weight": 0.5,
               "alignment_weight": 2.0},
    )  # fmt: skip
    criterion = build_loss(load_params(None, ["data.resolution=32"]), TASKS3)
    decoded = net.decode_training(net.encode(torch.rand(2, 3, 32, 32)), (32, 32))
    consistency, alignment = decoded.auxiliary
    assert (consistency.name, alignment.name) == ("xt_depth_to_seg", "xa_depth_to_seg")
    labels = torch.randint(0, 13, (2, 32, 32))
    labels[:, :4] = 255  # ignored pixels
    sums = criterion.auxiliary_losses(decoded, {"seg": labels})
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(sums["xa_depth_to_seg"].mean(), ce(alignment.output, labels, ignore_index=255))
    pseudo = decoded.outputs["seg"].argmax(dim=1)
    assert torch.allclose(sums["xt_depth_to_seg"].mean(), ce(consistency.output, pseudo))
    total = criterion.combine_auxiliary(decoded, sums)
    assert torch.allclose(total, 0.5 * sums["xt_depth_to_seg"].mean() + 2.0 * sums["xa_depth_to_seg"].mean())


def test_xtasc_default_pairs_are_every_ordered_pair_within_the_models_tasks():
    net = _net("xtasc", 32)
    assert sorted(net.decoders.transfers) == sorted(f"{a}_to_{b}" for a in TASKS3 for b in TASKS3 if a != b)
    single = build_multitask_net(
        ["depth"], 13, architecture="xtasc", **SMALL, xtasc={"pairs": [["seg", "depth"]]}
    )
    assert list(single.decoders.transfers) == [] and single.auxiliary_names == ()  # an st model


def test_shared_checkpoint_keys_are_unchanged():
    net = build_multitask_net(["seg"], 13, **SMALL)
    keys = list(net.state_dict())
    assert "decoders.seg.stages.0.weight" in keys and "decoders.seg.head.weight" in keys
    assert list(net.decoders) == ["seg"] and net.auxiliary_names == ()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.architecture=hydra"], r"model\.architecture"),
        (["model.architecture=mti", "data.resolution=32"], r"mti\.scales: stride 32 .*\[2, 4, 8, 16\]"),
        (["model.mti.scales=[4, 16]"], r"model\.mti.*scales must double"),
        (["model.mti.scales=[4, 8, 16]"], r"model\.mti.*channels: one width per scale"),
        (["model.mti.scales=[3, 6]", "model.mti.channels=[4, 4]"], r"model\.mti.*\[3, 6\] are not encoder"),
        (["model.xtasc.pairs=[[seg, curvature]]"], r"model\.xtasc\.pairs: task\(s\) \['curvature'\]"),
        (["model.tasks=[seg, depth]", "model.xtasc.pairs=[[seg, normal]]"], r"xtasc\.pairs.*\['normal'\]"),
        (["model.xtasc.pairs=[[seg, seg]]"], r"model\.xtasc.*two different tasks"),
    ],
)  # fmt: skip
def test_bad_architecture_params_name_the_param(overrides, message):
    with pytest.raises(ParamsError, match=message):
        load_params(None, overrides)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("arch") / "real")


@pytest.mark.parametrize("architecture", [TOY_MTI, TOY_XTASC], ids=["mti", "xtasc"])
def test_train_mt_and_evaluate_run_end_to_end(architecture, shards, tmp_path):
    from pipeline.evaluation import evaluate
    from pipeline.train.multitask import train_mt

    params = TinyProject(tmp_path, shards).params(*architecture, "train_mt.epochs=2")
    summary = train_mt(params, "mt", progress=False)["mt"]
    train_mt(params, "st", progress=False)  # single-task models of the same architecture
    history = (tmp_path / "plots" / "mt" / "mt.csv").read_text().splitlines()
    header = history[0].split(",")
    expected = (
        [f"train_mti_s{s}_{t}_loss" for s in (16, 8, 4, 2) for t in TASKS3]
        if "model.architecture=mti" in architecture
        else [f"train_{p}_{a}_to_{b}_loss" for p in ("xt", "xa") for a in TASKS3 for b in TASKS3 if a != b]
    )
    assert set(expected) <= set(header), sorted(set(expected) - set(header))
    assert len(history) == 3 and summary["epochs_done"] == 2
    report = evaluate(params, progress=False, metrics_dir=tmp_path / "metrics")
    assert list(report) == ["trivial", "st", "mt"] and 0.0 <= report["mt"]["seg"]["miou"] <= 1.0

    # The checkpoint carries its architecture: a shared model's evaluation reads it as an extra row,
    # while the params' own variants must match the params.
    best = tmp_path / "models" / "mt" / "best.pt"
    shared = TinyProject(tmp_path, shards).params(
        "train_mt.epochs=1", "train_mt.variants=[mt]", f'evaluate.checkpoints={{"other": "{best}"}}',
        f"train_mt.out={tmp_path / 'shared-models'}", f"train_mt.plots={tmp_path / 'shared-plots'}",
        f"evaluate.out={tmp_path / 'shared-reports'}",
    )  # fmt: skip
    train_mt(shared, "mt", progress=False)
    again = evaluate(shared, progress=False, metrics_dir=tmp_path / "shared-metrics")
    assert again["other"]["seg"] == pytest.approx(report["mt"]["seg"])


def test_train_mgm_drives_an_mti_net(tmp_path):
    from pipeline.train.mgm import train_mgm

    root = tmp_path
    mgm_project(root)
    summary = train_mgm(mgm_params(root, "mgm", *TOY_MTI, "mgm.epochs=1"), progress=False)
    state = torch.load(root / "mgm" / "best.pt", map_location="cpu", weights_only=False)
    assert state["model_config"]["architecture"] == "mti"
    assert any(key.startswith("decoders.propagate.") for key in state["model"])
    assert summary["epochs_done"] == 1


SIX_TASKS = ["seg", "depth", "normal", "edge_texture", "edge_occlusion", "reshading"]


@pytest.mark.parametrize("architecture", [TOY_MTI, TOY_XTASC], ids=["mti", "xtasc"])
def test_mgm_train_mt_runs_each_architecture_on_six_tasks(architecture, tmp_path, monkeypatch):
    """``mgm shard`` and ``mgm train_mt --variant mt`` with the Taskonomy map tasks, as a user runs them."""
    import json
    from pathlib import Path

    from stages.cli import main as mgm_main
    from tests._tiny import as_overrides

    monkeypatch.chdir(tmp_path)
    params_file = Path(__file__).resolve().parents[1] / "params.yaml"
    project = TinyProject(tmp_path, tmp_path / "real")
    sizes = {"data.rooms.train": 8, "data.rooms.val": 4, "data.rooms.test": 4, "shard.samples_per_shard": 4}
    pairs = ["model.xtasc.pairs=[[depth, edge_occlusion], [normal, reshading], [edge_texture, seg]]"]
    sets = [
        *project.overrides(*architecture, f"model.tasks={json.dumps(SIX_TASKS)}", "train_mt.epochs=1"),
        *as_overrides(sizes),
        *(pairs if "model.architecture=xtasc" in architecture else []),
    ]
    arguments = ["--params", str(params_file), "--quiet"]
    arguments += [part for value in sets for part in ("--set", value)]
    assert mgm_main(["shard", *arguments]) == 0
    assert json.loads((tmp_path / "real" / "summary.json").read_text())["tasks"] == SIX_TASKS
    assert mgm_main(["train_mt", "--variant", "mt", *arguments]) == 0
    header = (tmp_path / "plots" / "mt" / "mt.csv").read_text().splitlines()[0].split(",")
    for task in SIX_TASKS:
        assert f"val_{task}_loss" in header
    if "model.architecture=mti" in architecture:
        assert "train_mti_s2_edge_occlusion_loss" in header
    else:
        assert {"train_xt_depth_to_edge_occlusion_loss", "train_xt_edge_texture_to_seg_loss"} <= set(header)
    state = torch.load(tmp_path / "models" / "mt" / "best.pt", map_location="cpu", weights_only=False)
    assert state["tasks"] == SIX_TASKS and state["model_config"]["architecture"] == architecture[0][19:]


def test_unet_decoders_read_the_high_resolution_maps_and_shared_ones_do_not():
    """The control for MTI-Net's multi-scale input: a change confined to the 1/4 map moves the
    ``unet`` outputs and leaves ``shared`` ones exactly as they were."""
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64)
    for architecture, moves in [("unet", True), ("shared", False)]:
        net = _net(architecture, 64).eval()
        maps = net.encode(images) if architecture == "unet" else net.encoder.pyramid(images)
        assert set(maps) >= {32} and (architecture == "shared" or set(maps) == {2, 4, 8, 16, 32})
        before = net.decode({**maps}, (64, 64))
        changed = {**maps, 4: maps[4] + 1.0}
        after = net.decode(changed, (64, 64))
        same = all(torch.equal(before[task], after[task]) for task in TASKS3)
        assert same is not moves, architecture
