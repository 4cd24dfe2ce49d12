"""Benchmarks print their headline as one JSON object on their last line."""

from __future__ import annotations

import json

from bench._common import report


def test_the_last_line_is_the_headline_as_one_json_object(capsys, tmp_path):
    report("probe", {"ratio": 1.5, "seconds": 2, "rows": [{"a": 1}], "note": "x"}, str(tmp_path / "r.json"))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == {"benchmark": "probe", "ratio": 1.5, "seconds": 2, "note": "x"}
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == [{"a": 1}]
