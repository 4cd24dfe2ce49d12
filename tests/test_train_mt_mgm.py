"""train_mt@mgm-shards on tiny real shards: ratio 0 is mt, weak samples train M through a frozen R and SSL,
exact resume, fingerprint, and each bad input's error."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

from pipeline.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pipeline.config import load_params, params_to_dict
from pipeline.data.manifest import read_manifest
from pipeline.data.mixing import MixedShardDataset
from pipeline.data.reader import collate, read_summary
from pipeline.data.sharding import shard_dataset
from pipeline.errors import ParamsError, ShardError
from pipeline.models.refinement import RefinementNet, refinement_entry
from pipeline.train.builders import build_model, model_runs
from pipeline.train.engine import COMPLETE_MARKER
from pipeline.train.multitask import run_fingerprint, train_mt
from pipeline.train.ssl import build_ssl_head
from pipeline.train.weak_losses import build_weak_losses
from stages.train_mt import main as train_mt_main
from tests._tiny import mt_params


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """``real``: 16 rooms train images at 32 px, 8 labelled + 8 weak (4 per shard), 4 val, 4 test;
    ``r.pt``: a train_mgm-style checkpoint holding a tiny refinement network R."""
    root = tmp_path_factory.mktemp("mt-mgm")
    params = load_params(
        None,
        [
            f"shard.out={root / 'real'}",
            "data.resolution=32",
            "data.rooms.train=16",
            "data.label_fraction=0.5",
            "data.rooms.val=4",
            "data.rooms.test=4",
            "shard.samples_per_shard=4",
            "shard.workers=0",
        ],
    )
    shard_dataset(params, progress=False)
    scenes = read_summary(root / "real")["scene_names"]
    torch.manual_seed(0)
    refinement = RefinementNet(["seg", "depth", "normal"], 13, len(scenes), width=4, hidden=8)
    channels = build_model(_params(root, "fixture"), ["seg", "depth", "normal"], 13).feature_channels
    head = build_ssl_head("simclr", channels, 32, 8)
    save_checkpoint(
        {"refinement": refinement_entry(refinement), "scene_names": scenes, "ssl_head": head.state_dict()},
        root / "r.pt",
    )
    return root


def _params(root, out, *overrides):
    return mt_params(
        root / "real",
        root / out,
        "mix.weak=real",
        f"mix.refinement={root / 'r.pt'}",
        f"mix.synthetic={root / 'no-synthetic-set'}",
        "ssl.dim=8",
        "runtime.keep_resume_state=true",  # these tests read the final weights and optimizer state
        *overrides,
    )


def _last(folder):
    return load_checkpoint(folder / "last.pt")


def _assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_ratio_zero_reproduces_mt(root):
    train_mt(_params(root, "ref"), "mt", progress=False)
    zero = _params(root, "zero", "mix.synthetic_ratio=0")
    summary = train_mt(zero, "mgm-shards", progress=False)["mgm-shards"]
    mt, mgm = _last(root / "ref" / "models" / "mt"), _last(root / "zero" / "models" / "mgm-shards")
    _assert_same_tensors(mt["model"], mgm["model"])
    for index in mt["optimizer"]["state"]:
        _assert_same_tensors(mt["optimizer"]["state"][index], mgm["optimizer"]["state"][index])
    assert mt["engine"]["history"] == mgm["engine"]["history"] and "ssl_head" not in mgm
    assert summary["steps"] == 2 * 2  # 8 labelled, batch 4: no weak sample was added
    assert (root / "zero" / "models" / "mgm-shards" / COMPLETE_MARKER).is_file()
    assert (root / "zero" / "plots" / "mgm-shards" / "mgm-shards.csv").read_text() == (
        root / "ref" / "plots" / "mt" / "mt.csv"
    ).read_text()


def _keys_of(folder, split):
    table = read_manifest(folder)
    return {
        k for k, s in zip(table.column("key").to_pylist(), table.column("split").to_pylist()) if s == split
    }


def test_mixed_run_trains_on_weak_samples_through_the_stage(root, tmp_path):
    params = _params(root, "mixed", "mix.synthetic_ratio=1.0")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params_to_dict(params)))
    r_bytes = (root / "r.pt").read_bytes()
    argv = ["--params", str(params_file), "--variant", "mgm-shards", "--quiet"]
    argv += ["--keys-log", str(tmp_path / "keys")]
    assert train_mt_main([*argv, "--metrics", str(tmp_path / "metrics_{variant}.json")]) == 0
    folder = root / "mixed" / "models" / "mgm-shards"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "last.pt", COMPLETE_MARKER]
    last = _last(folder)
    assert last["step"] == 2 * 4  # 8 labelled + 8 weak per epoch, batch 4
    assert set(last["ssl_head"]) == {"project.weight", "project.bias"}
    for row in last["engine"]["history"]:
        assert row["train_scene_loss"] > 0 and row["train_ssl_loss"] > 0
        assert row["train_scene_real_loss"] > 0 and row["train_ssl_real_loss"] > 0
    # R trained on M's predictions of the labelled samples (mix.real_steps): it moved from r.pt's R
    r_start = load_checkpoint(root / "r.pt")["refinement"]["state"]
    moved = [k for k, v in last["refinement"].items() if not torch.equal(v, r_start[k])]
    assert any(".weight" in k for k in moved)
    labelled, weak = _keys_of(root / "real", "train"), _keys_of(root / "real", "weak")
    for epoch in (1, 2):
        keys = (tmp_path / "keys" / f"mgm-shards-mgm-shards-epoch{epoch}-rank0.txt").read_text().split()
        assert len(keys) == len(set(keys)) == 16 and set(keys) == labelled | weak
    assert (root / "r.pt").read_bytes() == r_bytes  # R is read, never written
    metrics = json.loads((tmp_path / "metrics_mgm-shards.json").read_text())
    assert metrics["mgm-shards"]["epochs_done"] == 2 and "scene" in metrics["mgm-shards"]["last_train_loss"]


def test_weak_losses_reach_m_only_and_r_stays_frozen(root):
    params = _params(root, "unit", "mix.synthetic_ratio=1.0", "mix.real_steps=false")
    torch.manual_seed(1)
    net = build_model(params, ["seg", "depth", "normal"], 13)
    scenes = read_summary(root / "real")["scene_names"]
    weak = build_weak_losses(params, net, ["seg", "depth", "normal"], 13, scenes, 32, torch.device("cpu"))
    assert weak is not None and weak.names == ["scene", "ssl"]
    r_before = {name: value.clone() for name, value in weak.refinement.state_dict().items()}
    dataset = MixedShardDataset(root / "real", root / "real", "weak", 1.0, seed=3)
    batch = next(iter(DataLoader(dataset, batch_size=8, collate_fn=collate)))
    assert int((~batch["labelled"]).sum()) == 4
    weak.train()
    assert not weak.refinement.training and weak.ssl_head.training
    net.train()
    features = net.encoder(batch["rgb"])
    sums = weak(net, features, batch)
    assert {name: int(value.count) for name, value in sums.items()} == {"scene": 4, "ssl": 4}
    weak.combine(sums).backward()
    assert all(not p.requires_grad and p.grad is None for p in weak.refinement.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weak.ssl_head.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.encoder.parameters())
    torch.optim.Adam([*net.parameters(), *weak.ssl_head.parameters()]).step()
    _assert_same_tensors(r_before, weak.refinement.state_dict())  # also its batch-norm statistics
    labelled_only = {k: v[batch["labelled"]] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    features = net.encoder(labelled_only["rgb"])
    assert all(int(value.count) == 0 for value in weak(net, features, labelled_only).values())


def test_fingerprint_covers_mix_params_weak_data_and_r(root, tmp_path):
    base = _params(root, "fp", "mix.synthetic_ratio=1.0")
    run = model_runs(base, "mgm-shards")[0]
    fingerprint = run_fingerprint(base, run)
    for change in ("mix.synthetic_ratio=0.5", "mix.ssl=none", "mix.scene_weight=2.0"):
        assert run_fingerprint(_params(root, "fp", "mix.synthetic_ratio=1.0", change), run) != fingerprint
    other_r = tmp_path / "r.pt"
    other_r.write_bytes((root / "r.pt").read_bytes() + b"\0")
    assert run_fingerprint(_params(root, "fp", f"mix.refinement={other_r}"), run) != fingerprint
    mt_run = model_runs(base, "mt")[0]
    assert run_fingerprint(base, mt_run) == run_fingerprint(_params(root, "fp", "mix.ssl=none"), mt_run)


def test_bad_weak_set_or_refinement_is_a_clear_error(root, tmp_path):
    missing_set = _params(root, "err", "mix.synthetic_ratio=0.5", "mix.weak=synthetic")
    with pytest.raises(ShardError, match=rf"weak shard folder {root / 'no-synthetic-set'} does not exist"):
        train_mt(missing_set, "mgm-shards", progress=False)
    with pytest.raises(
        ParamsError, match=r"mix\.synthetic_ratio: 1\.5 needs 12 weak samples .* holds only 8"
    ):
        train_mt(_params(root, "err", "mix.synthetic_ratio=1.5"), "mgm-shards", progress=False)
    no_r = _params(root, "err", "mix.synthetic_ratio=0.5", f"mix.refinement={tmp_path / 'none.pt'}")
    with pytest.raises(
        ParamsError, match=rf"mix\.refinement: checkpoint {tmp_path / 'none.pt'} does not exist"
    ):
        train_mt(no_r, "mgm-shards", progress=False)
    wrong = tmp_path / "wrong.pt"
    save_checkpoint({"refinement": refinement_entry(RefinementNet(["seg"], 13, 3, width=4, hidden=8))}, wrong)
    with pytest.raises(
        CheckpointError, match=r"mix\.refinement: .* has 3 scene classes \(the real shards have 6\)"
    ):
        wrong_r = _params(root, "err", "mix.synthetic_ratio=0.5", f"mix.refinement={wrong}")
        train_mt(wrong_r, "mgm-shards", progress=False)
    assert not (root / "err" / "models" / "mgm-shards" / "last.pt").exists()
    # no R needed when the scene loss is off
    train_mt(
        _params(root, "noscene", "mix.synthetic_ratio=0.5", "mix.scene_weight=0", "train_mt.epochs=1",
                f"mix.refinement={tmp_path / 'none.pt'}", "mix.auxiliary_init=fresh"),
        "mgm-shards", progress=False,
    )  # fmt: skip
    history = _last(root / "noscene" / "models" / "mgm-shards")["engine"]["history"]
    assert "train_scene_loss" not in history[0] and history[0]["train_ssl_loss"] > 0
    with pytest.raises(ParamsError, match=r"mix\.auxiliary_init=fresh with mix\.real_steps=false"):
        train_mt(_params(root, "err", "mix.synthetic_ratio=0.5", "mix.auxiliary_init=fresh",
                         "mix.real_steps=false"), "mgm-shards", progress=False)  # fmt: skip
    no_head = tmp_path / "no_head.pt"
    save_checkpoint({k: v for k, v in load_checkpoint(root / "r.pt").items() if k != "ssl_head"}, no_head)
    with pytest.raises(CheckpointError, match=r"no_head\.pt holds no SSL head .*mix\.auxiliary_init=fresh"):
        train_mt(_params(root, "err", "mix.synthetic_ratio=0.5", f"mix.refinement={no_head}"), "mgm-shards",
                 progress=False)  # fmt: skip
    assert not (root / "err" / "models" / "mgm-shards" / "last.pt").exists()


def test_weak_scene_loss_updates_the_encoder_only():
    from pipeline.models.multitask import build_multitask_net
    from pipeline.models.refinement import RefinementNet
    from pipeline.train.weak_losses import WeakLosses

    torch.manual_seed(0)
    net = build_multitask_net(
        ["seg", "depth", "normal"], 5, encoder="halfwidth34", encoder_widths=[8, 8, 16, 16],
        decoder_channels=[16, 8, 8, 8, 8],
    )  # fmt: skip
    refinement = (
        RefinementNet(["seg", "depth", "normal"], 5, 3, width=4, hidden=8).eval().requires_grad_(False)
    )
    losses = WeakLosses(refinement, "none", None, None)
    batch = {
        "rgb": torch.rand(4, 3, 32, 32),
        "scene": torch.tensor([0, 1, 2, 1]),
        "labelled": torch.tensor([True, False, True, False]),
    }
    features = net.encoder(batch["rgb"])  # the dense forward's encoder pass over the whole batch
    decoder_stats = [b.clone() for b in net.decoders.buffers()]
    sums = losses(net, features, batch)
    losses.combine(sums).backward()
    assert all(p.grad is None for p in net.decoders.parameters())
    assert all(p.grad is None for p in refinement.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.encoder.parameters())
    assert all(torch.equal(a, b) for a, b in zip(decoder_stats, net.decoders.buffers()))
    assert int(sums["scene"].count) == 2


def test_real_steps_train_r_on_labelled_rows_only_and_never_the_decoders(root):
    """mix.real_steps: R changes through step 2 (labelled rows) and not through step 5 (weak rows);
    the weak rows' losses reach M's encoder only, never its decoders."""
    params = _params(root, "unit_real", "mix.synthetic_ratio=1.0", "mix.ssl=none")
    torch.manual_seed(2)
    net = build_model(params, ["seg", "depth", "normal"], 13)
    scenes = read_summary(root / "real")["scene_names"]
    losses = build_weak_losses(params, net, ["seg", "depth", "normal"], 13, scenes, 32, torch.device("cpu"))
    assert losses is not None and losses.names == ["scene", "scene_real"] and losses.trains_refinement
    dataset = MixedShardDataset(root / "real", root / "real", "weak", 1.0, seed=3)
    batch = next(iter(DataLoader(dataset, batch_size=8, collate_fn=collate)))
    losses.train()
    net.train()

    def rows(picked):
        return {k: v[picked] if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def gradients(sub_batch, name):
        net.zero_grad(set_to_none=True)
        losses.zero_grad(set_to_none=True)
        sums = losses(net, net.encoder(sub_batch["rgb"]), sub_batch)
        sums[name].mean().backward()
        return (
            [p.grad for p in losses.refinement.parameters()],
            [p.grad for p in net.decoders.parameters()],
            [p.grad for p in net.encoder.parameters()],
        )

    r_grads, decoder_grads, encoder_grads = gradients(rows(~batch["labelled"]), "scene")
    assert all(g is None for g in r_grads) and all(g is None for g in decoder_grads)
    assert any(g is not None and g.abs().sum() > 0 for g in encoder_grads)
    assert all(p.requires_grad for p in losses.refinement.parameters())  # frozen only within step 5
    r_grads, decoder_grads, encoder_grads = gradients(rows(batch["labelled"]), "scene_real")
    assert all(g is not None for g in r_grads) and sum(float(g.abs().sum()) for g in r_grads) > 0
    assert all(g is None for g in decoder_grads)
    assert any(g is not None and g.abs().sum() > 0 for g in encoder_grads)
