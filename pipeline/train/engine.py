"""The one training engine: every training stage (``train_mt``, ``train_gan``, ``train_mgm``) runs here.

A training loop supplies what is its own: how its parts are built (its constructor), one unit of
training (an epoch or a step, :meth:`TrainingLoop.train_unit`, which also validates when it is
due), its state dict, and what it writes when it finishes. The engine owns everything the loops
used to repeat, with one rule each:

* **Resume or restart**, from one fingerprint of params, data and code (:class:`Fingerprint`). A
  ``last.pt`` whose fingerprint differs is not resumed: training restarts and says why, in one
  line on stderr. Params that may change without a restart are declared on the param fields
  themselves (:func:`pipeline.config.training_identity`); the code part is the import closure of the
  loop's module (:func:`pipeline.code_closure.code_fingerprint`), so an edit of the code a loop runs
  restarts it, never skips it. A ``last.pt`` that cannot be read is an error naming the file.
* **Files**: ``last.pt`` (everything to resume) every ``checkpoint_every`` units and at the end,
  ``best.pt`` whenever the loop's score improves, both atomic and ``weights_only``-loadable; the
  history CSV rewritten from the rows kept in ``last.pt`` (so never appended twice); the completion
  marker, written last, which nothing else writes. Unless the run keeps its resume state
  (:attr:`RunSpec.keep_resume_state`), a finished run's ``last.pt`` then shrinks to its *record*
  (fingerprint, history, summary; no weights or optimizer moments): a finished run needs the full
  state only to be extended, and the record still lets an identical rerun finish at once. A restart
  removes the old ``last.pt``,
  ``best.pt``, marker and the loop's other outputs, and every run first removes the temporaries a
  killed write left behind.
* **Order**: the RNG states are restored after the loop is built and loaded, so nothing set up
  before the first unit shifts the random streams: on CPU a resumed run reaches the same tensors,
  bit for bit, as an uninterrupted one.
* **Progress**: one bar over the units with a total and an ETA; notices go to stderr.
* **DDP**: every rank trains; rank 0 writes; ranks meet at a barrier after each unit.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch.distributed as dist

from pipeline.atomic import ensure_writable, write_json_atomic
from pipeline.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from pipeline.code_closure import code_fingerprint
from pipeline.errors import PipelineError
from pipeline.locks import output_lock
from pipeline.progress import progress_bar
from pipeline.runtime import Runtime
from pipeline.train.history import write_history_csv

COMPLETE_MARKER = "training.json"
"""Written last by a finished run, and only then: a folder without it holds no finished model."""
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
FINISHED_KIND = "mgm-finished-run"
"""``kind`` of a ``last.pt`` that is a finished run's record rather than a resumable state."""


class TrainingError(PipelineError):
    """Training cannot go on (a non-finite loss, no batch to train on): the message says where."""


@dataclass(frozen=True)
class Fingerprint:
    """What a checkpoint must share with a run to be resumed: params, data and code.

    ``params`` holds the training identity of each params section the loop reads; ``data`` the
    content hashes of its inputs (shard sets, checkpoints); ``code_modules`` the modules whose
    import closure is the code part.
    """

    params: Mapping[str, Any]
    data: Mapping[str, str]
    code_modules: Sequence[str]

    def parts(self) -> dict[str, str]:
        """One hash per part, so a refused resume can say which part differs."""
        return {
            "params": _sha(self.params),
            "data": _sha(self.data),
            "code": code_fingerprint(*self.code_modules),
        }

    def value(self) -> dict[str, Any]:
        """What is stored in ``last.pt``: the part hashes and the params themselves (to name keys)."""
        return {**self.parts(), "params_values": json.loads(json.dumps(self.params, sort_keys=True))}


def _sha(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint_differences(stored: Any, wanted: Mapping[str, Any]) -> list[str]:
    """Why a stored fingerprint does not match (empty when it does), one short phrase each."""
    if not isinstance(stored, Mapping) or "code" not in stored:
        return ["it was written by another version of the training code"]
    problems = []
    if stored.get("params") != wanted["params"]:
        changes = _changed_keys(stored.get("params_values", {}), wanted["params_values"])
        problems.append(f"params changed ({'; '.join(changes[:6]) or 'keys unknown'})")
    if stored.get("data") != wanted["data"]:
        problems.append("the input data changed")
    if stored.get("code") != wanted["code"]:
        problems.append("the training code changed")
    return problems


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``dotted.key: checkpoint OLD vs params NEW`` for every leaf that differs."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys: list[str] = []
        for key in sorted(set(old) | set(new)):
            keys += _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        return keys
    return [] if old == new else [f"{prefix.rstrip('.')}: checkpoint {old!r} vs params {new!r}"]


def require_batches(split_size: int, batch_size: int, where: str, batch_param: str) -> None:
    """Refuse, before any work, a run whose epochs would take no step (and finish "trained")."""
    if split_size < batch_size:
        raise TrainingError(
            f"{where} holds {split_size} samples, fewer than {batch_param} ({batch_size}): every epoch "
            f"would take no step; lower {batch_param} or shard more training images"
        )


@dataclass
class UnitResult:
    """What one unit of training reports: a history row (when it evaluated) and its score."""

    row: dict[str, Any] | None = None
    score: float | None = None
    """Lower is better; the engine keeps ``best.pt`` for the lowest score seen."""


@dataclass
class EngineState:
    """The engine's part of ``last.pt``."""

    units_done: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = math.inf
    best_unit: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "units_done": self.units_done,
            "history": self.history,
            "best_score": self.best_score,
            "best_unit": self.best_unit,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> EngineState:
        return cls(
            int(state["units_done"]),
            list(state["history"]),
            float(state["best_score"]),
            int(state["best_unit"]),
        )

    def best_row(self) -> dict[str, Any]:
        """The history row of the best unit (the last row evaluated at or before it), as in the CSV."""
        if not self.best_unit:
            return {}
        rows = [row for row in self.history if row.get("_unit", 0) <= self.best_unit]
        return {k: v for k, v in rows[-1].items() if not k.startswith("_")} if rows else {}


class TrainingLoop(Protocol):
    """What a training loop gives the engine (see the module docstring)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything besides the engine's state needed to resume exactly (weights-only types)."""
        ...

    def load_state_dict(self, state: Mapping[str, Any], where: str) -> None:
        """Restore :meth:`state_dict`'s output (``where`` names the file in errors)."""
        ...

    def train_unit(self, unit: int) -> UnitResult:
        """Run unit ``unit`` (0-based): one epoch or one step, with validation when it is due."""
        ...

    def best_state(self) -> dict[str, Any]:
        """What ``best.pt`` holds when the score improves (weights-only types)."""
        ...

    def finish(self, state: EngineState) -> None:
        """Write the loop's final outputs (rank 0 only) once the last unit is done."""
        ...

    def summary(self, state: EngineState) -> dict[str, Any]:
        """What the run reports (the completion marker holds it once the run has finished)."""
        ...

    # Optional: ``pause_note(unit) -> str | None`` names a long pause of unit ``unit`` (say an
    # evaluation) that the engine shows on the progress bar before running it.


@dataclass(frozen=True)
class RunSpec:
    """One training run of one model (or one model set) in one output folder."""

    name: str
    """How notices name the run, e.g. ``train_gan`` or ``train_mt mt/mt``."""
    folder: Path
    units: int
    unit: str
    """``epoch`` or ``step``: what one unit of training is."""
    fingerprint: Fingerprint
    history_csv: Path | None = None
    checkpoint_every: int = 1
    resume: bool = True
    outputs: tuple[str, ...] = ()
    """Glob patterns (relative to ``folder``) of the loop's other files, which a restart removes
    with ``last.pt`` and ``best.pt`` (an exported generator, the old run's sample grids)."""
    keep_resume_state: bool = True
    """Keep the full ``last.pt`` once the run has finished (a loop whose length may grow without a
    restart needs it); ``False``: replace it by the run's record, a few kB instead of the weights
    and optimizer moments."""


class Engine:
    """Runs a :class:`TrainingLoop` under a :class:`RunSpec` (see the module docstring)."""

    def __init__(self, spec: RunSpec, runtime: Runtime, *, progress: bool = True) -> None:
        self.spec = spec
        self.runtime = runtime
        self.progress = progress
        self.last_path = spec.folder / LAST_NAME
        self.best_path = spec.folder / BEST_NAME
        self.marker = spec.folder / COMPLETE_MARKER
        self.state = EngineState()
        self._fingerprint = spec.fingerprint.value()

    def notice(self, message: str) -> None:
        """One line on stderr, from rank 0 only."""
        if self.runtime.is_main:
            print(f"{self.spec.name}: {message}", file=sys.stderr, flush=True)

    def prepare(self) -> dict[str, Any] | None:
        """Decide resume or restart; return the resumable ``last.pt`` (``None``: start afresh).

        The loop, already built, loads the returned state with :meth:`TrainingLoop.load_state_dict`;
        :meth:`run` then restores the RNG states. :meth:`train` does all three.
        """
        folder = self.spec.folder
        if self.runtime.is_main:
            ensure_writable(folder)
            if self.spec.history_csv is not None:
                ensure_writable(self.spec.history_csv.parent)
            for stale in self._temporaries():
                stale.unlink(missing_ok=True)  # a killed write's half-written file
        saved = None
        if self.last_path.is_file() and not self.spec.resume:
            self.notice(f"resume is off; training afresh instead of resuming {self.last_path}")
        elif self.last_path.is_file():
            saved = load_checkpoint(self.last_path, map_location=self.runtime.device)
            problems = fingerprint_differences(saved.get("fingerprint"), self._fingerprint)
            if not problems and saved.get("kind") == FINISHED_KIND:
                problems = self._record_problems(saved)
            if problems:
                self.notice(f"not resuming {self.last_path}: {'; '.join(problems)}; training afresh")
                saved = None
        if self.runtime.is_main:
            self.marker.unlink(missing_ok=True)
            if saved is None:
                self._remove_old_outputs()
        if self.runtime.distributed:
            dist.barrier()  # nobody reads what rank 0 is removing
        if saved is not None:
            self.state = EngineState.from_dict(saved["engine"])
            if saved.get("kind") == FINISHED_KIND:
                self.notice(f"already finished ({self.last_path} records it); rewriting its record files")
            else:
                self.notice(f"resuming {self.last_path} after {self.spec.unit} {self.state.units_done}")
        return saved

    def _record_problems(self, record: Mapping[str, Any]) -> list[str]:
        """Why a finished run's record cannot stand for this run (empty: it can)."""
        units_done = EngineState.from_dict(record["engine"]).units_done
        if units_done != self.spec.units:
            return [
                f"it records a run finished after {units_done} {self.spec.unit}(s) without the state to "
                f"continue to {self.spec.units} (keep it with runtime.keep_resume_state: true)"
            ]
        if not self.best_path.is_file():
            return [f"its {self.best_path.name} is gone"]
        return []

    def _temporaries(self) -> list[Path]:
        """The half-written files a killed run may have left: ``.<name>.<random>.tmp`` siblings
        (:func:`pipeline.atomic.write_bytes_atomic`) of exactly the files this run writes."""
        spec = self.spec
        written = [spec.folder / name for name in (LAST_NAME, BEST_NAME, COMPLETE_MARKER, *spec.outputs)]
        if spec.history_csv is not None:
            written.append(spec.history_csv)
        found: list[Path] = []
        for path in written:
            found += path.parent.glob(f".{path.name}.*.tmp") if path.parent.is_dir() else []
        return found

    def _remove_old_outputs(self) -> None:
        folder = self.spec.folder
        for name in (LAST_NAME, BEST_NAME):
            (folder / name).unlink(missing_ok=True)
        for pattern in self.spec.outputs:
            for path in sorted(folder.glob(pattern)):
                if path.is_file():
                    path.unlink()

    def train(self, loop: TrainingLoop, *, max_units: int | None = None) -> dict[str, Any]:
        """Resume or restart (:meth:`prepare`), then :meth:`run`; return the loop's summary.

        Build ``loop`` first: bad params or input then fail before any file changes.
        """
        lock = output_lock(self.spec.folder, self.spec.name) if self.runtime.is_main else nullcontext()
        with lock:  # a second run on this folder is refused; a killed run's lock dies with it
            saved = self.prepare()
            if saved is not None and saved.get("kind") == FINISHED_KIND:
                return self._refinish(saved)
            if saved is not None:
                loop.load_state_dict(saved, str(self.last_path))
            self.run(loop, saved, max_units=max_units)
        return loop.summary(self.state)

    def _refinish(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """An identical rerun of a finished run whose state was dropped: its outputs stand, so only
        the files :meth:`prepare` removed or a resume-free param may move are written again."""
        summary = dict(record["summary"])
        if self.runtime.is_main:
            if self.spec.history_csv is not None and self.state.history:
                write_history_csv(public_history(self.state), self.spec.history_csv)
            write_json_atomic(self.marker, summary)
        if self.runtime.distributed:
            dist.barrier()
        return summary

    def run(
        self, loop: TrainingLoop, saved: Mapping[str, Any] | None, *, max_units: int | None = None
    ) -> bool:
        """Train until ``spec.units`` (or ``max_units``, as a kill at that boundary would); return
        whether the run has finished (its final outputs and marker written)."""
        spec = self.spec
        if saved is not None:
            set_rng_state(saved["rng"])  # last: nothing set up before shifts the restored streams
        stop = spec.units if max_units is None else min(spec.units, max_units)
        bar = progress_bar(
            total=spec.units,
            initial=min(self.state.units_done, spec.units),
            desc=spec.name,
            unit=spec.unit,
            disable=not (self.progress and self.runtime.is_main),
            dynamic_ncols=True,
        )
        try:
            pause_note = getattr(loop, "pause_note", None)  # optional: why the bar will sit still
            while self.state.units_done < stop:
                unit = self.state.units_done
                note = pause_note(unit) if pause_note is not None else None
                if note:
                    bar.set_postfix_str(note)  # refreshes the bar before the pause
                result = loop.train_unit(unit)
                self.state.units_done = unit + 1
                self._record(loop, result, final=self.state.units_done == spec.units)
                bar.update(1)
                if result.score is not None:
                    bar.set_postfix(score=f"{result.score:.4g}")
        finally:
            bar.close()
        if self.state.units_done < spec.units:
            return False
        if self.runtime.is_main:
            loop.finish(self.state)
            if spec.history_csv is not None and self.state.history:
                # again: a finished run resumed with another (resume-free) plots path writes it there
                write_history_csv(public_history(self.state), spec.history_csv)
            summary = loop.summary(self.state)
            write_json_atomic(self.marker, summary)
            if not spec.keep_resume_state:  # after the marker: a kill in between leaves the full state
                record = {
                    "kind": FINISHED_KIND,
                    "engine": self.state.as_dict(),
                    "fingerprint": self._fingerprint,
                    "summary": json.loads(json.dumps(summary)),  # plain types: weights_only loads it
                }
                save_checkpoint(record, self.last_path)
        return True

    def _record(self, loop: TrainingLoop, result: UnitResult, final: bool) -> None:
        state, spec = self.state, self.spec
        if result.row is not None:
            state.history.append({**result.row, "_unit": state.units_done})
        improved = result.score is not None and result.score < state.best_score
        if improved:
            assert result.score is not None
            state.best_score, state.best_unit = result.score, state.units_done
        if self.runtime.is_main:
            if improved:
                save_checkpoint(loop.best_state(), self.best_path)
            if state.units_done % spec.checkpoint_every == 0 or final:
                save_checkpoint(
                    {
                        **loop.state_dict(),
                        "engine": state.as_dict(),
                        "fingerprint": self._fingerprint,
                        "rng": rng_state(),
                    },
                    self.last_path,
                )
            if result.row is not None and spec.history_csv is not None:
                write_history_csv(public_history(state), spec.history_csv)
        if self.runtime.distributed:
            dist.barrier()


def public_history(state: EngineState) -> list[dict[str, Any]]:
    """The history rows as written to the CSV: without the engine's bookkeeping columns (``_unit``)."""
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in state.history]
