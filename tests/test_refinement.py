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
        "arch": "small",
        "seg_input": "probabilities",
    }
    with pytest.raises(ParamsError, match=r"model\.tasks: unknown task 'edges'"):
        RefinementNet(["edges"], 5, 3)
    with pytest.raises(ValueError, match=r"at least one task"):
        RefinementNet([], 5, 3)
    with pytest.raises(ValueError, match=r"width \(0\)"):
        RefinementNet(["seg"], 5, 3, width=0)
    with pytest.raises(ValueError, match=r"unknown arch 'vit' \(known: small, resnet\)"):
        RefinementNet(["seg"], 5, 3, arch="vit")
    with pytest.raises(ValueError, match=r"unknown seg_input 'argmax'"):
        RefinementNet(["seg"], 5, 3, seg_input="argmax")


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


def test_the_authors_resnet_r_has_their_widths_and_fc_sizes():
    """resnet at width 48, hidden 128: per task a 5x5 stem and 3/4/3 residual blocks at 48/96/192,
    pooled to 192 each, FC 576 -> 128 -> scenes for three tasks; any input size."""
    torch.manual_seed(0)
    net = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=48, hidden=128, arch="resnet")
    encoder = net.encoders["depth"]
    assert encoder[0].kernel_size == (5, 5) and encoder[0].stride == (2, 2)
    blocks = [layer for layer in encoder if layer.__class__.__name__ == "BasicBlock"]
    assert [block.body[0].out_channels for block in blocks] == [48] * 3 + [96] * 4 + [192] * 3
    assert [block.body[0].stride[0] for block in blocks] == [1, 1, 1, 2, 1, 1, 1, 2, 1, 1]
    assert (net.classifier[0].in_features, net.classifier[0].out_features) == (576, 128)
    assert net.classifier[2].out_features == NUM_SCENES
    small = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES)
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(net) > 10 * count(small)
    for size in (32, 64):
        assert net.eval()(random_predictions(2, size)).shape == (2, NUM_SCENES)


def test_logits_input_sees_what_a_softmax_hides():
    """seg_input logits (the authors'): a constant shift, invisible to a softmax, changes R's output."""
    torch.manual_seed(0)
    net = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=8, hidden=16, seg_input="logits").eval()
    predictions = random_predictions(2, 32)
    shifted = {**predictions, "seg": predictions["seg"] + 7.0}
    with torch.no_grad():
        assert not torch.allclose(net(shifted), net(predictions), atol=1e-3)


@pytest.mark.parametrize("arch, seg_input", [("resnet", "logits"), ("small", "probabilities")])
def test_each_architecture_round_trips_and_old_entries_still_load(tmp_path, arch, seg_input):
    torch.manual_seed(0)
    net = RefinementNet(TASKS, NUM_CLASSES, NUM_SCENES, width=4, hidden=8, arch=arch, seg_input=seg_input)
    net(random_predictions(4, 32))
    net.eval()
    path = tmp_path / "r.pt"
    torch.save({"refinement": refinement_entry(net)}, path)
    loaded = load_refinement(torch.load(path, weights_only=True)["refinement"]).eval()
    assert loaded.config == net.config
    predictions = random_predictions(2, 32)
    with torch.no_grad():
        assert torch.equal(loaded(predictions), net(predictions))
    if arch == "small":  # an entry written before arch and seg_input existed means small + probabilities
        entry = refinement_entry(net)
        old = {"config": {k: v for k, v in entry["config"].items() if k not in ("arch", "seg_input")},
               "state": entry["state"]}  # fmt: skip
        assert load_refinement(old).config == net.config
