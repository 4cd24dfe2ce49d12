"""The import graph: closures as DVC deps and resume fingerprints, layering rules, no cycles."""

from __future__ import annotations

import ast
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from pipeline.code_closure import ImportGraph, code_fingerprint
from stages import deps

REPO_ROOT = Path(__file__).resolve().parents[1]
GRAPH = ImportGraph(REPO_ROOT)


def _write(root: Path, files: dict[str, str]) -> ImportGraph:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ImportGraph(root, ("pkg",))


def test_closure_follows_every_import_kind(tmp_path):
    graph = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/entry.py": "from pkg.sub import leaf\n\ndef run():\n    from .lazy import x\n",
            "pkg/sub/leaf.py": "import numpy\nfrom . import sibling\n",
            "pkg/sub/sibling.py": '__data_files__ = ("table.json",)\n',
            "pkg/sub/table.json": "{}",
            "pkg/lazy.py": "x = 1\n",
            "pkg/unused.py": "import pkg.entry\n",
        },
    )
    assert graph.closure_files(["pkg.entry"]) == [
        "pkg/__init__.py",
        "pkg/entry.py",
        "pkg/lazy.py",  # imported inside a function: it runs when the function does
        "pkg/sub/__init__.py",  # importing pkg.sub.leaf runs the package first
        "pkg/sub/leaf.py",
        "pkg/sub/sibling.py",  # relative import
        "pkg/sub/table.json",  # declared data file
    ]
    with pytest.raises(ValueError, match="not first-party"):
        graph.closure(["numpy"])


def test_cycles_are_found_and_fingerprint_follows_the_closure(tmp_path):
    graph = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    import pkg.a\n",
        },
    )
    assert graph.cycles("pkg") == [["pkg.a", "pkg.b"]]
    before = code_fingerprint("pkg.a", graph=graph)
    (tmp_path / "pkg" / "c.py").write_text("")  # outside the closure: no change
    assert code_fingerprint("pkg.a", graph=ImportGraph(tmp_path, ("pkg",))) == before
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    import pkg.a\n# edited\n")
    assert code_fingerprint("pkg.a", graph=ImportGraph(tmp_path, ("pkg",))) != before


def test_library_has_no_cycle_and_no_upward_import():
    assert GRAPH.cycles("pipeline") == []
    upward = []
    for module in GRAPH.all_modules("pipeline"):
        for target in GRAPH.imports(module):
            if module.startswith("pipeline.models") and target.startswith("pipeline.train"):
                upward.append(f"{module} -> {target}")
            if module.startswith("pipeline.train") and target in (
                "pipeline.evaluation",
                "pipeline.synthesis",
            ):
                upward.append(f"{module} -> {target}")
            if (
                not module.startswith("pipeline.train")
                and target.startswith("pipeline.train")
                and (module not in ("pipeline.evaluation",))
            ):
                upward.append(f"{module} -> {target}")
            if target.split(".")[0] in ("stages", "flows"):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_library_imports_neither_prefect_nor_dvc():
    offenders = []
    for path in sorted((REPO_ROOT / "pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("prefect", "dvc")]
    assert offenders == []


def test_dvc_yaml_code_deps_equal_each_stage_import_closure():
    out = io.StringIO()
    with redirect_stdout(out):
        code = deps.main(["--check", "--file", str(REPO_ROOT / "dvc.yaml")])
    assert code == 0, out.getvalue() + "\nrun `mgm deps` to update dvc.yaml"


def test_baselines_do_not_depend_on_the_gan_code():
    train_mt = set(GRAPH.closure_files(["stages.train_mt"]))
    assert "pipeline/train/multitask.py" in train_mt and "pipeline/train/engine.py" in train_mt
    assert not {name for name in train_mt if name.startswith("pipeline/train/gan/")}
    assert "pipeline/train/gan/loop.py" in GRAPH.closure_files(["stages.train_gan"])


def test_deps_check_names_missing_and_extra_files(tmp_path, capsys):
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(
        "stages:\n  train_gan:\n    cmd: python -m stages.train_gan\n    deps:\n"
        "      - pipeline/train/checkpoint.py\n      - data/shards/real\n"
    )
    assert deps.main(["--check", "--file", str(dvc_yaml)]) == 1
    out = capsys.readouterr().out
    assert "missing code dep pipeline/train/gan/loop.py" in out
    assert "code dep pipeline/train/checkpoint.py is not imported" in out
    assert deps.main(["--file", str(dvc_yaml)]) == 0
    assert deps.main(["--check", "--file", str(dvc_yaml)]) == 0
    text = dvc_yaml.read_text()
    assert "pipeline/train/gan/loop.py" in text and text.rstrip().endswith("- data/shards/real")
    assert deps.main(["--file", str(tmp_path / "absent.yaml")]) == 2


def test_every_dvc_output_persists_so_a_failed_run_keeps_the_earlier_one():
    import yaml

    document = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    loose = []
    for name, body in deps.stage_bodies(document):
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind, []):
                path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                if not (options or {}).get("persist"):
                    loose.append(f"{name}: {path}")
    assert loose == []
