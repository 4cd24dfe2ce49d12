"""The map tasks (edges, reshading, curvature): their maps, storage, sources, losses and metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pipeline.config import SplitParams, load_params
from pipeline.data.codec import decode_fields, encode_sample
from pipeline.data.dense_maps import (
    OCCLUSION_JUMP,
    camera_reshading,
    occlusion_edges,
    texture_edges,
)
from pipeline.data.mixing import weak_item
from pipeline.data.reader import ShardDataset, require_tasks, to_tensors
from pipeline.data.rooms import build_scene, render_room
from pipeline.data.schema import validate_sample
from pipeline.data.sources import make_source
from pipeline.data.taskonomy import TaskonomySource
from pipeline.errors import ParamsError, SampleError, ShardError
from pipeline.metrics.dense import MapMeter
from pipeline.tasks.registry import TASKS
from tests._builders import build_taskonomy
from tests._tiny import TinyProject, make_shards

ROOM_MAPS = ["edge_texture", "edge_occlusion", "reshading"]
SIX = ["seg", "depth", "normal", *ROOM_MAPS]


# --- the maps on hand-made cases ---------------------------------------------------------------


def test_texture_edges_are_zero_on_flat_images_and_peak_beside_a_step():
    assert texture_edges(np.full((16, 16, 3), 90, np.uint8)).max() == 0.0
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, 8:] = 255
    edges = texture_edges(image)
    assert edges.dtype == np.float32 and edges.shape == (16, 16)
    assert np.allclose(edges, edges[:1])  # a vertical step: every row alike
    row = edges[0]
    assert set(np.argsort(row)[-2:]) == {7, 8}  # strongest on the two columns beside the step
    assert row[7] == pytest.approx(row[8]) == pytest.approx(0.64, abs=0.01)  # Sobel gain 8 / scale 4
    assert row[:3].max() < 0.01 and row[-3:].max() < 0.01  # far from it, nothing; borders replicated


def test_occlusion_edges_mark_the_near_side_of_depth_jumps_between_surfaces():
    depth = np.full((6, 6), 3.0)
    surface = np.zeros((6, 6), int)
    depth[2:4, 2:4], surface[2:4, 2:4] = 1.0, 1  # a box in front of a wall
    edges = occlusion_edges(depth, surface)
    expected = np.zeros((6, 6))
    expected[2:4, 2:4] = 1.0  # every box pixel borders the wall; no wall pixel is an edge
    assert edges.tolist() == expected.tolist()

    crease = np.full((4, 4), 2.0)
    crease[:, 2:] = 2.0 * (1 + OCCLUSION_JUMP / 2)  # two faces meeting: a small step only
    faces = np.zeros((4, 4), int)
    faces[:, 2:] = 1
    assert occlusion_edges(crease, faces).max() == 0.0
    assert occlusion_edges(depth, np.zeros((6, 6), int)).max() == 0.0  # one surface: no occlusion
    holes = depth.copy()
    holes[:, :2] = 0.0  # no depth: neither edge nor occluded
    assert occlusion_edges(holes, surface)[:, :2].max() == 0.0


def test_camera_reshading_is_the_cosine_to_the_camera_ray():
    ray = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 2.0]]])
    normal = np.array(
        [[[0.0, 0.0, -1.0], [0.0, -math.sin(math.pi / 3), -0.5], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]
    )
    shading = camera_reshading(normal, ray)
    assert shading.tolist()[0] == pytest.approx([1.0, 0.5, 0.0, 0.0])


# --- the rooms renderer draws them from its geometry -------------------------------------------


@pytest.mark.parametrize("index", [0, 3, 7])
def test_rooms_occlusion_edges_sit_exactly_where_depth_jumps(index):
    sample = render_room(0, index, 64, ROOM_MAPS)
    depth, edges = sample.depth.astype(np.float64), sample.maps["edge_occlusion"]
    farther = np.zeros(depth.shape, bool)  # a 4-neighbour farther by more than the jump
    big = np.zeros(depth.shape, bool)  # ... by more than a fifth of the depth: surely another surface
    for shift in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        neighbour = np.roll(depth, shift, axis=(0, 1))
        inside = np.ones(depth.shape, bool)
        axis, step = (0, shift[0]) if shift[0] else (1, shift[1])
        edge_slice = [slice(None), slice(None)]
        edge_slice[axis] = 0 if step > 0 else -1
        inside[tuple(edge_slice)] = False  # np.roll wraps: drop the wrapped row or column
        farther |= inside & (neighbour - depth > OCCLUSION_JUMP * depth)
        big |= inside & (neighbour - depth > 0.2 * depth)
    assert set(np.unique(edges)) <= {0.0, 1.0} and edges.sum() > 0
    assert not (edges.astype(bool) & ~farther).any()  # every edge has a farther neighbour
    assert big.any() and edges[big].min() == 1.0  # every large jump is an edge on its near side


def test_rooms_reshading_follows_the_normals_and_the_pinhole_rays():
    resolution = 32
    sample = render_room(0, 5, resolution, ["reshading"])
    scene = build_scene(0, 5)
    coords = (np.arange(resolution) + 0.5 - resolution / 2) / ((resolution / 2) / scene.tan_half_fov)
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    rays = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    expected = np.clip(-(sample.normal * rays).sum(axis=-1), 0, 1)
    assert np.abs(sample.maps["reshading"] - expected).max() < 1e-4
    assert sample.maps["reshading"].min() > 0  # every visible face turns towards the eye


def test_asking_for_maps_leaves_the_base_labels_unchanged():
    plain, rich = render_room(2, 11, 32), render_room(2, 11, 32, ROOM_MAPS)
    for name in ("rgb", "seg", "depth", "normal"):
        assert np.array_equal(getattr(plain, name), getattr(rich, name))
    assert plain.maps == {} and sorted(rich.maps) == sorted(ROOM_MAPS)
    edges = rich.maps["edge_texture"]
    assert edges.min() >= 0.0 and edges.max() <= 1.0 and edges.mean() > 0.02


# --- storage -----------------------------------------------------------------------------------


def test_maps_round_trip_through_the_codec_and_the_reader():
    sample = render_room(0, 1, 32, ROOM_MAPS)
    sample.maps["curvature"] = np.linspace(-2, 2, 32 * 32 * 2, dtype=np.float32).reshape(32, 32, 2)
    record = encode_sample(sample, "train")
    assert record == encode_sample(sample, "train")  # deterministic bytes
    assert {"edge_texture.png", "edge_occlusion.png", "reshading.png", "curvature.npy"} <= set(record)
    fields = decode_fields({name: value for name, value in record.items() if name != "__key__"})
    for name in ROOM_MAPS:
        assert np.abs(fields[name] - sample.maps[name]).max() <= 0.5 / 255 + 1e-6  # 8-bit quantised
    assert np.abs(fields["curvature"] - sample.maps["curvature"]).max() < 2e-3  # float16
    assert "edge_texture" not in decode_fields(dict(record), dense=("seg",))
    tensors = to_tensors(fields)
    assert tensors["edge_texture"].shape == (1, 32, 32) and tensors["curvature"].shape == (2, 32, 32)
    assert tensors["reshading_valid"].all() and tensors["reshading_valid"].shape == (1, 32, 32)


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("edge_texture", np.full((32, 32), 1.5, np.float32), "must lie in"),
        ("reshading", np.zeros((16, 16), np.float32), "float32 32x32"),
        ("curvature", np.zeros((32, 32), np.float32), "float32 32x32x2"),
        ("shininess", np.zeros((32, 32), np.float32), "no map task"),
        ("edge_occlusion", np.full((32, 32), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_maps_are_refused_naming_the_sample_and_the_map(name, values, message):
    sample = render_room(0, 1, 32)
    sample.maps[name] = values
    with pytest.raises(SampleError, match=rf"room-00000001.*{message}"):
        validate_sample(sample, num_classes=13, num_scenes=6, resolution=32)


# --- sources and shards ------------------------------------------------------------------------


def test_sources_refuse_map_tasks_they_cannot_provide_naming_the_param(tmp_path):
    refused = r"model.tasks: 'curvature' cannot come from data.source=rooms.*flat"
    with pytest.raises(ParamsError, match=refused):
        make_source(load_params(None, ["model.tasks=[seg, curvature]"]).data, ["seg", "curvature"])
    folder = tmp_path / "nyu"
    folder.mkdir()
    data = load_params(None, ["data.source=nyuv2-folder", f"data.path={folder}"]).data
    with pytest.raises(ParamsError, match=r"'reshading' cannot come from data.source=nyuv2-folder.*seg"):
        make_source(data, ["seg", "reshading"])


def test_shards_carry_the_asked_map_tasks_and_training_refuses_missing_ones(tmp_path):
    plain = make_shards(tmp_path / "plain", train=4, val=2, test=2, reference=0)
    rich = make_shards(tmp_path / "rich", train=4, val=2, test=2, reference=0, tasks=SIX)
    summary = json.loads((rich / "summary.json").read_text())
    assert summary["tasks"] == SIX
    assert (plain / "train-000000.tar").stat().st_size < (rich / "train-000000.tar").stat().st_size
    item = next(iter(ShardDataset(rich, "train")))
    assert item["edge_occlusion"].shape == (1, 32, 32)
    base = next(iter(ShardDataset(plain, "train")))
    for name in ("rgb", "seg", "depth", "normal"):
        assert torch.equal(item[name], base[name])
    with pytest.raises(ShardError, match=r"model.tasks: reshading not in the shards of .*plain.*re-shard"):
        require_tasks(json.loads((plain / "summary.json").read_text()), plain, ["seg", "reshading"])

    from pipeline.train.multitask import train_mt

    params = TinyProject(tmp_path / "run", plain).params(f"model.tasks={json.dumps(SIX)}")
    with pytest.raises(ShardError, match="edge_texture, edge_occlusion, reshading not in the shards"):
        train_mt(params, "mt", progress=False)


def test_taskonomy_reads_the_map_folders(tmp_path):
    root = build_taskonomy(tmp_path / "tt", building=None, maps=True)
    views = ((0, 0), (0, 1), (3, 2), (7, 0), (12, 1))
    rows = "".join(f"point_{p}_view_{v},kitchen\n" for p, v in views)
    (tmp_path / "scenes.csv").write_text("image,scene\n" + rows)
    split = SplitParams(val_fraction=0.2, test_fraction=0.2)
    maps = ["edge_texture", "edge_occlusion", "reshading", "curvature"]
    source = TaskonomySource(root, tmp_path / "scenes.csv", resolution=40, split=split, seed=0, maps=maps)
    sample = validate_sample(source.load("point_0_view_0"), num_classes=17, num_scenes=1, resolution=40)
    edges = sample.maps["edge_texture"]
    assert edges[:, 20] == pytest.approx(8192 / 65535 / 0.25) and edges[:, :19].max() == 0.0  # / 0.25
    assert sample.maps["edge_occlusion"][:, 20].min() == 1.0
    assert sample.maps["reshading"][0, 0] == 0.0 and sample.maps["reshading"][0, -1] == 1.0
    assert sample.maps["curvature"][5, 5] == pytest.approx([100 / 127, -50 / 127])
    (root / "reshading" / "point_3_view_2_domain_reshading.png").unlink()
    with pytest.raises(Exception, match=r"point_3_view_2_domain_reshading.png: file does not exist"):
        TaskonomySource(root, tmp_path / "scenes.csv", resolution=40, split=split, seed=0, maps=maps)


# --- losses, metrics and mixing ----------------------------------------------------------------


def test_map_loss_is_l1_over_valid_pixels_and_channels():
    target = torch.tensor([[[[0.0, 1.0]]], [[[1.0, 1.0]]]])  # 2 x 1 x 1 x 2
    valid = torch.tensor([[[[True, True]]], [[[False, False]]]])
    pred = torch.tensor([[[[0.25, 0.5]]], [[[0.0, 0.0]]]])
    total, count = TASKS["reshading"].loss(pred, {"reshading": target, "reshading_valid": valid})
    assert float(total) == pytest.approx(0.75) and int(count) == 2  # the second sample is weak
    curvature = torch.tensor([[[[1.0]], [[-1.0]]]])  # 1 x 2 x 1 x 1
    batch = {"curvature": curvature, "curvature_valid": torch.ones(1, 1, 1, 1).bool()}
    total, count = TASKS["curvature"].loss(torch.zeros_like(curvature), batch)
    assert float(total) == pytest.approx(1.0) and int(count) == 1  # mean over the two channels


def test_edge_meter_counts_precision_recall_and_f1():
    meter = TASKS["edge_occlusion"].meter(13)
    assert isinstance(meter, MapMeter)
    target = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]])
    meter.update(torch.tensor([[[[0.9, 0.2, 0.7, 0.1]]]]), target)
    result = meter.compute()
    assert result["precision"] == pytest.approx(0.5) and result["recall"] == pytest.approx(0.5)
    assert result["f1"] == pytest.approx(0.5)
    assert result["mae"] == pytest.approx((0.1 + 0.8 + 0.7 + 0.1) / 4)
    assert result["rmse"] == pytest.approx(math.sqrt((0.01 + 0.64 + 0.49 + 0.01) / 4))
    assert "f1" not in TASKS["reshading"].meter(13).compute()


def test_weak_items_carry_invalid_maps_the_loss_skips():
    item = weak_item({"rgb": np.zeros((8, 8, 3), np.uint8), "scene": 1, "meta": {}}, "k", "01", ["curvature"])
    assert item["curvature"].shape == (2, 8, 8) and not item["curvature_valid"].any()
    batch = {name: value[None] for name, value in item.items() if isinstance(value, torch.Tensor)}
    total, count = TASKS["curvature"].loss(torch.ones(1, 2, 8, 8), batch)
    assert float(total) == 0.0 and int(count) == 0


def test_mixed_batches_of_map_shards_collate_with_invalid_maps_on_weak_rows(tmp_path):
    from pipeline.data.mixing import MixedShardDataset
    from pipeline.data.reader import collate

    sizes = {"train": 8, "val": 2, "test": 2, "reference": 0}
    shards = make_shards(tmp_path / "real", **sizes, label_fraction=0.5, tasks=SIX)
    items = list(MixedShardDataset(shards, shards, "weak", 1.0, shuffle=False))
    batch = collate(items)
    labelled = batch["labelled"]
    assert int(labelled.sum()) == 4 and int((~labelled).sum()) == 4
    for name in ROOM_MAPS:
        assert batch[name].shape == (8, 1, 32, 32)
        valid = batch[f"{name}_valid"][:, 0].flatten(1)
        assert valid[labelled].all() and not valid[~labelled].any()
    total, count = TASKS["reshading"].loss(torch.full_like(batch["reshading"], 0.5), batch)
    labelled_maps = batch["reshading"][labelled]
    assert int(count) == 4 * 32 * 32  # the weak rows count for nothing
    assert float(total) == pytest.approx(float((labelled_maps - 0.5).abs().sum()), rel=1e-5)
