"""Progress bars: one line per redraw outside a terminal, plain tqdm in one."""

from __future__ import annotations

import io

from pipeline.progress import INTERVAL_ENV, LogLines, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_outside_a_terminal_every_redraw_is_its_own_line(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "0")
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    log = io.StringIO()
    for _ in progress_bar(range(2), desc="outer", unit="epoch", file=log):
        for _ in progress_bar(range(3), desc="inner", total=3, leave=False, file=log):
            pass
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert all(line.strip() == line and line for line in lines)
    assert lines[0].startswith("outer:   0%") and lines[-1].startswith("outer: 100%")
    assert sum(line.startswith("inner: 100%") for line in lines) == 2  # each epoch's bar reaches its total
    assert "2/2" in lines[-1]


def test_the_interval_limits_lines(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "3600")
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    log = io.StringIO()
    for _ in progress_bar(range(1000), total=1000, file=log):
        pass
    assert len(log.getvalue().splitlines()) == 2  # the start and the closing state only


def test_a_terminal_gets_tqdm_redraws():
    terminal = Terminal()
    for _ in progress_bar(range(3), total=3, file=terminal, mininterval=0):
        pass
    assert "\r" in terminal.getvalue()


def test_log_lines_drops_clears_and_repeats():
    out = io.StringIO()
    stream = LogLines(out)
    stream.write("\rbar 1/2")
    stream.write("\rbar 1/2   ")
    stream.write("\r        \r")
    stream.write("\x1b[A\rbar 2/2\n")
    assert out.getvalue() == "bar 1/2\nbar 2/2\n"
