"""Progress bars that read well both in a terminal and in a log (``dvc repro`` in CI, a Prefect worker).

In a terminal this is plain tqdm. Anywhere else tqdm's ``\\r`` redraws would pile up into one
line several kB long, and nested bars would print cursor moves; there every redraw becomes one
line of its own, at most one per ``MGM_PROGRESS_INTERVAL`` seconds (default 30; tqdm's own
``TQDM_MININTERVAL`` also works, as the flows set it).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

INTERVAL_ENV = "MGM_PROGRESS_INTERVAL"
LOG_INTERVAL_SECONDS = 30.0
_CURSOR_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LogLines:
    """A text stream for tqdm that writes each redraw as one line: no ``\\r``, no cursor moves, no
    blank or repeated lines (tqdm clears a closing bar with spaces; that is dropped)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = ""

    def write(self, text: str) -> int:
        for part in _CURSOR_CODES.sub("", text).replace("\r", "\n").split("\n"):
            line = part.rstrip()
            if line and line != self._last:
                self.stream.write(line + "\n")
                self._last = line
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` that writes one line per interval when stderr is not a terminal."""
    stream = kwargs.pop("file", None) or sys.stderr
    if kwargs.get("disable") or is_terminal(stream):
        return tqdm(iterable, file=stream, **kwargs)
    interval = float(os.environ.get("TQDM_MININTERVAL") or os.environ.get(INTERVAL_ENV, LOG_INTERVAL_SECONDS))
    kwargs.setdefault("mininterval", interval)
    # tqdm's monitor thread forces a redraw after `maxinterval` (10 s): no more often than the interval
    kwargs.setdefault("maxinterval", max(interval, 10.0))
    kwargs["dynamic_ncols"] = False  # a log has no width to follow
    kwargs.setdefault("ncols", 100)
    return tqdm(iterable, file=LogLines(stream), **kwargs)
