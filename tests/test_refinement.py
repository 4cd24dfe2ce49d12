"""The refinement network R: shapes at several sizes, softmax input, training, checkpoint entries."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.checkpoint import CheckpointError
from pipeline.errors import ParamsError
from pipeline.models.multitask import build_multitask_net
from pipeline.models.refinement import RefinementNet, load_refinement, refinement_entry

TASKS = ["seg", "depth", "normal"]
NUM_CLASSES = 13
NUM_SCENES = 6


def tiny_m():
    return build_multitask_net(
        TASKS,
        NUM_CLASSES,
        encoder="halfwidth34",
        encoder_widths=[8, 8, 16, 16],
        decoder_channels=[16, 8, 8, 8, 8],
    )


def random_predictions(batch: int, size: int) -> dict[str, torch.Tensor]:
    return {
        "seg": torch.randn(batch, NUM_CLASSES, size, size),
        "depth": torch.rand(batch, 1, size, size) * 10,
        "normal": F.normalize(torch.randn(batch, 3, size, size), dim=1),
    }


@pytest.mark.parametrize("size", [32, 64, 256])
def test_scene_logits_from_predictions_at_each_size(size):
    torch.manual_seed(0)
    net = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=8, hidden=16)
    logits = net(random_predictions(2, size))
    assert logits.shape == (2, NUM_SCENES)
    assert torch.isfinite(logits).all()
    assert set(net.encoders) == set(TASKS)


def test_segmentation_enters_as_probabilities():
    torch.manual_seed(0)
    net = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=8, hidden=16).eval()
    predictions = random_predictions(2, 32)
    shifted = {**predictions, "seg": predictions["seg"] + 7.0}  # same softmax
    other = {**predictions, "seg": predictions["seg"] * 5.0}  # sharper softmax
    with torch.no_grad():
        base = net(predictions)
        assert torch.allclose(net(shifted), base, atol=1e-5)
        assert not torch.allclose(net(other), base, atol=1e-4)


def test_only_its_own_tasks_are_read_and_a_missing_one_is_named():
    torch.manual_seed(0)
    net = RefinementNet(["depth"], NUM_CLASSES, NUM_SCENES, width=8, hidden=16).eval()
    predictions = random_predictions(2, 32)
    with torch.no_grad():
        with_extra = net(predictions)
        alone = net({"depth": predictions["depth"]})
    assert torch.equal(with_extra, alone)
    with pytest.raises(KeyError, match=r"'depth' missing"):
        net({"seg": predictions["seg"]})
    with pytest.raises(ValueError, match=r"depth prediction has shape \(2, 3, 32, 32\), expected B x 1"):
        net({"depth": predictions["normal"]})


def test_config_and_bad_arguments():
    net = RefinementNet(["seg", "normal"], 5, 3, width=4, hidden=8)
    assert net.config == {
        "tasks": ["seg", "normal"],
        "num_classes": 5,
        "num_scenes": 3,
        "width": 4,
        "hidden": 8,
    }
    with pytest.raises(ParamsError, match=r"model\.tasks: unknown task 'edges'"):
        RefinementNet(["edges"], 5, 3)
    with pytest.raises(ValueError, match=r"at least one task"):
        RefinementNet([], 5, 3)
    with pytest.raises(ValueError, match=r"width \(0\)"):
        RefinementNet(["seg"], 5, 3, width=0)


def test_scene_loss_trains_r_and_reaches_m_encoder():
    torch.manual_seed(0)
    m = tiny_m()
    net = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=8, hidden=16)
    images = torch.rand(4, 3, 32, 32)
    scenes = torch.tensor([0, 1, 2, 3])
    F.cross_entropy(net(m(images)), scenes).backward()
    encoder_grads = [p.grad for p in m.encoder.parameters() if p.grad is not None]
    assert encoder_grads and sum(float(g.abs().sum()) for g in encoder_grads) > 0

    predictions = {task: value.detach() for task, value in m(images).items()}
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = F.cross_entropy(net(predictions), scenes)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_entry_round_trips_through_a_weights_only_file(tmp_path):
    torch.manual_seed(0)
    net = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=8, hidden=16)
    net(random_predictions(4, 32))  # move the BN running statistics away from their init
    net.eval()
    path = tmp_path / "r.pt"
    torch.save({"refinement": refinement_entry(net)}, path)
    entry = torch.load(path, weights_only=True)["refinement"]
    loaded = load_refinement(entry, "cpu")
    assert loaded.config == net.config
    loaded.eval()
    predictions = random_predictions(2, 32)
    with torch.no_grad():
        assert torch.equal(loaded(predictions), net(predictions))


def test_load_errors_name_the_mismatch():
    entry = refinement_entry(RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=8, hidden=16))
    wider = {"config": {**entry["config"], "width": 4}, "state": entry["state"]}
    with pytest.raises(
        CheckpointError, match=r"R in r\.pt.*shape mismatch classifier\.0\.weight.*encoders\.depth\.0\.weight"
    ):
        load_refinement(wider, "cpu", where="R in r.pt")
    fewer = {
        "config": entry["config"],
        "state": {k: v for k, v in entry["state"].items() if "classifier" not in k},
    }
    with pytest.raises(CheckpointError, match=r"missing keys \['classifier\.0\.bias'"):
        load_refinement(fewer, "cpu")
    no_hidden = {
        "config": {k: v for k, v in entry["config"].items() if k != "hidden"},
        "state": entry["state"],
    }
    with pytest.raises(CheckpointError, match=r"missing keys \['hidden'\]"):
        load_refinement(no_hidden, "cpu")
    with pytest.raises(CheckpointError, match=r"unknown task 'edges'"):
        load_refinement({"config": {**entry["config"], "tasks": ["edges"]}, "state": {}}, "cpu")
    with pytest.raises(CheckpointError, match=r"expected a dict with 'config' and 'state'"):
        load_refinement({"state": entry["state"]}, "cpu")
