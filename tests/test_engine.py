"""The training engine with a toy loop: resume or restart and why, files, marker, temporaries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import torch

from pipeline.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pipeline.runtime import Runtime
from pipeline.train.engine import (
    COMPLETE_MARKER,
    Engine,
    EngineState,
    Fingerprint,
    RunSpec,
    UnitResult,
    public_history,
)

CPU = Runtime(device=torch.device("cpu"))


class ToyLoop:
    """A linear layer fitted to a fixed target, one SGD step per unit; scores every other unit."""

    def __init__(self, folder) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(3, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.folder = folder
        self.finished = 0

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def train_unit(self, unit: int) -> UnitResult:
        x = torch.randn(8, 3)  # the global RNG: resume must restore it
        loss = ((self.model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        (self.folder / "samples").mkdir(exist_ok=True)
        (self.folder / "samples" / f"step-{unit:03d}.png").write_bytes(b"grid")
        if unit % 2:
            return UnitResult()
        value = float(loss.detach())
        return UnitResult(row={"unit": unit + 1, "loss": value}, score=value)

    def best_state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict()}

    def finish(self, state: EngineState) -> None:
        self.finished += 1

    def summary(self, state: EngineState) -> dict[str, Any]:
        return {"units": state.units_done, "rows": len(public_history(state))}


def _train(folder, capsys=None, *, units=6, lr_param=0.1, data="a", max_units=None):
    spec = RunSpec(
        name="toy",
        folder=folder,
        units=units,
        unit="step",
        fingerprint=Fingerprint({"toy": {"lr": lr_param}}, {"shards": data}, ("pipeline.train.engine",)),
        history_csv=folder / "history.csv",
        checkpoint_every=2,
        outputs=("samples/step-*.png",),
    )
    loop = ToyLoop(folder)
    return Engine(spec, CPU, progress=False).train(loop, max_units=max_units), loop


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, capsys):
    whole, _ = _train(tmp_path / "whole")
    assert whole == {"units": 6, "rows": 3}
    partial, _ = _train(tmp_path / "parts", max_units=4)
    assert partial == {"units": 4, "rows": 2} and not (tmp_path / "parts" / COMPLETE_MARKER).exists()
    torch.manual_seed(123)  # a new process starts elsewhere: the restored RNG must win
    resumed, _ = _train(tmp_path / "parts")
    assert "resuming" in capsys.readouterr().err
    a, b = (load_checkpoint(tmp_path / name / "last.pt") for name in ("whole", "parts"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["engine"] == b["engine"]
    assert (tmp_path / "whole" / "history.csv").read_text() == (
        tmp_path / "parts" / "history.csv"
    ).read_text()
    assert json.loads((tmp_path / "parts" / COMPLETE_MARKER).read_text()) == resumed
    best = load_checkpoint(tmp_path / "parts" / "best.pt")
    assert set(best) == {"model"}


def test_finished_run_is_not_trained_again(tmp_path):
    _train(tmp_path)
    before = load_checkpoint(tmp_path / "last.pt")
    again, loop = _train(tmp_path)
    assert again == {"units": 6, "rows": 3} and loop.finished == 1
    after = load_checkpoint(tmp_path / "last.pt")
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lr_param": 0.2}, "params changed (toy.lr: checkpoint 0.1 vs params 0.2)"),
        ({"data": "b"}, "the input data changed"),
    ],
)
def test_other_params_or_data_restart_and_say_why(tmp_path, capsys, change, reason):
    _train(tmp_path, max_units=4)
    assert len(list((tmp_path / "samples").glob("*.png"))) == 4
    capsys.readouterr()
    result, _ = _train(tmp_path, max_units=2, **change)
    err = capsys.readouterr().err
    assert f"toy: not resuming {tmp_path / 'last.pt'}: {reason}; training afresh" in err
    assert (
        result == {"units": 2, "rows": 1}
        and load_checkpoint(tmp_path / "last.pt")["engine"]["units_done"] == 2
    )
    assert len(list((tmp_path / "samples").glob("*.png"))) == 2  # the old run's grids are gone


def test_checkpoint_of_other_code_restarts(tmp_path, capsys):
    _train(tmp_path, max_units=2)
    saved = load_checkpoint(tmp_path / "last.pt")
    saved["fingerprint"]["code"] = "0" * 64
    save_checkpoint(saved, tmp_path / "last.pt")
    _train(tmp_path, max_units=2)
    assert "the training code changed; training afresh" in capsys.readouterr().err
    legacy = {k: v for k, v in load_checkpoint(tmp_path / "last.pt").items() if k != "fingerprint"}
    save_checkpoint({**legacy, "fingerprint": "a-string-from-an-older-version"}, tmp_path / "last.pt")
    _train(tmp_path, max_units=2)
    assert "written by another version of the training code" in capsys.readouterr().err


def test_unreadable_checkpoint_names_the_file_and_temporaries_are_removed(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "last.pt").write_bytes(b"half a checkpoint")
    with pytest.raises(CheckpointError, match=rf"checkpoint {tmp_path / 'last.pt'} cannot be loaded"):
        _train(tmp_path)
    (tmp_path / "last.pt").unlink()
    (tmp_path / "samples").mkdir()
    stale = [
        tmp_path / ".last.pt.abc123.tmp",
        tmp_path / ".best.pt.x.tmp",
        tmp_path / ".history.csv.q1.tmp",
        tmp_path / "samples" / ".step-004.png.z9.tmp",
    ]
    for path in stale:
        path.write_bytes(b"killed mid-write")
    (tmp_path / "notes.txt").write_text("a user's file")
    (tmp_path / ".notes.txt.keep.tmp").write_text("not a file this run writes")
    _train(tmp_path, max_units=1)
    assert not any(path.exists() for path in stale)
    assert (tmp_path / "notes.txt").read_text() == "a user's file"
    assert (tmp_path / ".notes.txt.keep.tmp").exists()


def test_resume_off_restarts(tmp_path, capsys):
    _train(tmp_path, max_units=2)
    spec = RunSpec("toy", tmp_path, 2, "step", Fingerprint({}, {}, ()), resume=False)
    engine = Engine(spec, CPU, progress=False)
    assert engine.prepare() is None
    assert "resume is off" in capsys.readouterr().err and not (tmp_path / "last.pt").exists()
