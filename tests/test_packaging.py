"""Packaging: the library installs and imports without DVC and Prefect; an extra adds them."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
PIPELINE_ONLY = ("dvc", "prefect", "fastapi", "ruamel.yaml")


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("pipeline", "stages", "flows")}


def test_base_requirements_leave_dvc_and_prefect_to_the_flows_extra():
    project = _project()
    base = {_name(r) for r in project["dependencies"]}
    assert base.isdisjoint(PIPELINE_ONLY)
    assert set(PIPELINE_ONLY) <= {_name(r) for r in project["optional-dependencies"]["flows"]}
    assert "mgm-pipeline[flows]" in project["optional-dependencies"]["dev"]  # the README installs .[dev]


def test_every_library_import_is_a_base_requirement():
    base = {_name(r) for r in _project()["dependencies"]}
    distributions = packages_distributions()
    missing = {}
    for module in sorted(_third_party_imports(REPO_ROOT / "pipeline")):
        provided = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not provided & base:
            missing[module] = sorted(provided)
    assert missing == {}, "imported by pipeline/ but not in [project].dependencies"


def test_library_and_stages_import_with_dvc_and_prefect_absent():
    blocker = (
        "import importlib.abc, sys\n"
        "class Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {('dvc', 'prefect', 'fastapi', 'ruamel')!r}:\n"
        "            raise ImportError(f'{name} is not installed (blocked)')\n"
        "sys.meta_path.insert(0, Absent())\n"
        "import pkgutil, importlib, pipeline, stages\n"
        "packages = (pipeline, stages)\n"
        "names = [m.name for p in packages for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 60
