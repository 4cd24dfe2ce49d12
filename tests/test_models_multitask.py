"""The multi-task network: encoders, decoders, task registry, pooled features, params errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from pipeline.checkpoint import CheckpointError
from pipeline.config import load_params
from pipeline.errors import ParamsError
from pipeline.models.multitask import HalfWidthEncoder, MultiTaskNet, ResNet18Encoder, build_multitask_net
from pipeline.tasks.registry import TASKS, task_spec


def test_outputs_per_task_at_input_size():
    torch.manual_seed(0)
    net = build_multitask_net(
        ["seg", "depth", "normal"], 13, encoder="resnet18", decoder_channels=[16, 8, 8, 8, 8]
    )
    out = net(torch.rand(2, 3, 32, 32))
    assert set(out) == {"seg", "depth", "normal"}
    assert out["seg"].shape == (2, 13, 32, 32)
    assert out["depth"].shape == (2, 1, 32, 32)
    assert out["normal"].shape == (2, 3, 32, 32)
    assert torch.allclose(out["normal"].norm(dim=1), torch.ones(2, 32, 32), atol=1e-5)
    assert net.features(torch.rand(2, 3, 32, 32)).shape == (2, 512)
    assert net.feature_channels == 512


def test_single_task_model_is_m_with_one_task_and_odd_sizes_are_resized():
    net = build_multitask_net(
        ["depth"], 40, encoder="halfwidth34", encoder_widths=[8, 8, 16, 16], decoder_channels=[8] * 5
    )
    assert isinstance(net, MultiTaskNet) and list(net.decoders) == ["depth"]
    assert net(torch.rand(1, 3, 48, 48))["depth"].shape == (1, 1, 48, 48)


def test_half_width_encoder_layout():
    encoder = HalfWidthEncoder()
    stem_conv = encoder.stem[0]
    assert stem_conv.kernel_size == (5, 5) and stem_conv.stride == (2, 2) and stem_conv.out_channels == 48
    assert [len(stage) for stage in encoder.layers] == [3, 4, 6, 3]
    assert [stage[-1].conv2.out_channels for stage in encoder.layers] == [48, 96, 192, 360]
    assert encoder(torch.rand(1, 3, 64, 64)).shape == (1, 360, 2, 2)


def test_decoder_stages_match_the_reference():
    net = build_multitask_net(["seg"], 13)
    decoder = net.decoders["seg"]
    transposed = [m for m in decoder.stages if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in transposed] == [
        (c, (2, 2), (2, 2)) for c in (256, 128, 64, 48, 32)
    ]
    assert decoder.head.out_channels == 13


def test_imagenet_weights_load_from_a_local_path(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    reference = resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    encoder = ResNet18Encoder(path)
    assert torch.equal(encoder.stem[0].weight, reference.conv1.weight)
    assert torch.equal(encoder.layers[3][1].conv2.weight, reference.layer4[1].conv2.weight)
    with pytest.raises(ParamsError, match=r"model\.pretrained: .*missing\.pth does not exist"):
        ResNet18Encoder(tmp_path / "missing.pth")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a ResNet-18 state dict"):
        ResNet18Encoder(tmp_path / "other.pth")


def test_unknown_task_is_a_params_error_naming_model_tasks():
    with pytest.raises(ParamsError, match=r"model\.tasks: .*unknown task\(s\) \['edges'\]; known tasks: seg"):
        load_params(None, ["model.tasks=[seg, edges]"])
    with pytest.raises(ParamsError, match=r"model\.tasks: unknown task 'edges'"):
        task_spec("edges")
    with pytest.raises(ParamsError, match=r"loss\.weights: task\(s\) \[.normal.\]"):
        load_params(None, ["model.tasks=[seg]", "loss.weights={normal: 2}"])


def test_a_new_task_joins_by_one_registry_entry(monkeypatch):
    edges = dataclasses.replace(TASKS["depth"], name="edges", target="edges")
    monkeypatch.setitem(TASKS, "edges", edges)
    params = load_params(None, ["model.tasks=[seg, edges]"])
    assert params.model.tasks == ["seg", "edges"]
    net = build_multitask_net(params.model.tasks, 13, decoder_channels=[8] * 5)
    assert net(torch.rand(2, 3, 32, 32))["edges"].shape == (2, 1, 32, 32)


@pytest.mark.parametrize(
    "encoder", [ResNet18Encoder(), HalfWidthEncoder([8, 12, 16, 24])], ids=["resnet18", "half"]
)
@pytest.mark.parametrize("size", [32, 64, 128])
def test_the_pyramid_gives_every_scale_and_its_last_map_is_forward(encoder, size):
    """Strides 2 ... 32 with the channels the encoder declares; the 1/32 map is what forward gives
    (the guide projection and the SSL head keep reading that)."""
    torch.manual_seed(0)
    encoder.eval()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        maps = encoder.pyramid(x)
        assert list(maps) == [2, 4, 8, 16, 32]
        for stride, value in maps.items():
            assert value.shape == (2, encoder.pyramid_channels[stride], size // stride, size // stride)
        assert torch.equal(maps[32], encoder(x))
    assert encoder.pyramid_channels[32] == encoder.out_channels
