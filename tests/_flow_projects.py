"""Temporary projects for the flow tests: the real pipeline at toy size, and toy DVC projects.

Toy projects are real git + DVC repos whose stages are short Python scripts (no torch), so a flow
over them takes seconds: a stage that fails a set number of times, a stage that varies with
``mix.synthetic_ratio`` (the sweep's param), a stage that writes a metric and an image.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import Params
from tests._dvc_repo import make_project_repo, run
from tests._tiny import PIPELINE

RATIO_PARAM = "mix.synthetic_ratio"


def tiny_pipeline_repo(root: Path, extra: dict[str, Any] | None = None) -> Path:
    """A copy of this project with toy params for the sections the library knows."""
    known = {key: value for key, value in PIPELINE.items() if key.split(".")[0] in Params.model_fields}
    return make_project_repo(root, {**known, **(extra or {})})


def make_toy_repo(root: Path, stages: dict[str, Any], params: dict[str, Any], files: dict[str, str]) -> Path:
    """A git + DVC repo holding ``files``, ``params.yaml`` and a ``dvc.yaml`` of ``stages``, committed."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (root / ".gitignore").write_text("attempts.log\n")
    run(["git", "init", "-q", "-b", "main"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "toy project"], root)
    return root


PREPARE = """\
from pathlib import Path
Path("prepared").mkdir(exist_ok=True)
Path("prepared/input.txt").write_text("prepared input\\n")
print("prepare: wrote prepared/input.txt")
"""

FLAKY = """\
import sys
from pathlib import Path
import yaml
fail_first = yaml.safe_load(Path("params.yaml").read_text())["toy"]["fail_first"]
log = Path("attempts.log")
attempt = len(log.read_text().splitlines()) + 1 if log.exists() else 1
log.write_text((log.read_text() if log.exists() else "") + f"attempt {attempt}\\n")
print(f"flaky: attempt {attempt} starting", flush=True)
if attempt <= fail_first:
    print(f"flaky: attempt {attempt}: the input is bad (deliberate test failure)", file=sys.stderr)
    sys.exit(3)
Path("flaky_out.txt").write_text(f"ok after {attempt} attempts\\n")
"""

REPORT = """\
import json
from pathlib import Path
from PIL import Image
Path("report").mkdir(exist_ok=True)
Image.new("RGB", (48, 32), (200, 40, 40)).save("report/grid.png")
Path("metrics").mkdir(exist_ok=True)
Path("metrics/report.json").write_text(json.dumps({"score": 0.75, "task": {"miou": 0.5}}))
print("report stage says hello")
"""

PROBE = """\
import json
from pathlib import Path
import yaml
ratio = float(yaml.safe_load(Path("params.yaml").read_text())["mix"]["synthetic_ratio"])
Path("metrics").mkdir(exist_ok=True)
score = round(1.0 - (ratio - 0.5) ** 2, 6)
Path("metrics/probe.json").write_text(json.dumps({"ratio": ratio, "score": score, "constant": 1}))
print(f"probe: ratio {ratio} score {score}")
"""


def flaky_repo(root: Path, fail_first: int, retries: int) -> Path:
    """``prepare`` then ``flaky`` (fails its first ``fail_first`` attempts); ``flow.retries`` set."""
    stages = {
        "prepare": {"cmd": "python prepare.py", "deps": ["prepare.py"], "outs": ["prepared"]},
        "flaky": {
            "cmd": "python flaky.py",
            "deps": ["flaky.py", "prepared"],
            "params": ["toy.fail_first"],
            "outs": ["flaky_out.txt"],
        },
    }
    params = {"toy": {"fail_first": fail_first}, "flow": {"retries": retries, "retry_delay_seconds": 0}}
    return make_toy_repo(root, stages, params, {"prepare.py": PREPARE, "flaky.py": FLAKY})


def report_repo(root: Path) -> Path:
    """``prepare`` then ``report`` (a metrics file and an image): fast stages with artifacts."""
    stages = {
        "prepare": {"cmd": "python prepare.py", "deps": ["prepare.py"], "outs": ["prepared"]},
        "report": {
            "cmd": "python report.py",
            "deps": ["report.py", "prepared"],
            "outs": ["report"],
            "metrics": [{"metrics/report.json": {"cache": False}}],
        },
    }
    params = {"flow": {"retries": 0, "retry_delay_seconds": 0}}
    return make_toy_repo(root, stages, params, {"prepare.py": PREPARE, "report.py": REPORT})


def probe_stage(deps: list[str] | None = None) -> dict[str, Any]:
    """A test-only stage whose metrics follow ``mix.synthetic_ratio``."""
    return {
        "cmd": "python probe.py",
        "deps": ["probe.py", *(deps or [])],
        "params": [RATIO_PARAM],
        "metrics": [{"metrics/probe.json": {"cache": False}}],
    }


def sweep_repo(root: Path) -> Path:
    """A toy project with ``mix.synthetic_ratio`` in params.yaml and the probe stage."""
    params = {"mix": {"synthetic_ratio": 0.0}, "flow": {"retries": 0, "retry_delay_seconds": 0}}
    return make_toy_repo(root, {"ratio_probe": probe_stage()}, params, {"probe.py": PROBE})
