"""``mgm deps``: keep each DVC stage's code deps equal to the files its entry point imports.

For every stage whose command is ``python -m stages.<name>``, the code deps (entries under
``pipeline/``, ``stages/`` or ``flows/``) are replaced by the import closure of ``stages.<name>``
(:mod:`pipeline.code_closure`); the other deps (data, checkpoints) stay as they are, after the code.
``--check`` changes nothing and exits 1 when a stage's code deps differ, naming the files.

Run ``mgm deps`` after adding an import; CI runs the check (``tests/test_code_graph.py``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.code_closure import FIRST_PARTY, ImportGraph

ENTRY = re.compile(r"python -m (stages\.\w+)")
DEFAULT_FILE = "dvc.yaml"


def is_code_dep(dep: Any) -> bool:
    """A dep that names one of the project's source files or packages (not data)."""
    return isinstance(dep, str) and dep.split("/")[0] in FIRST_PARTY


def stage_bodies(document: Any) -> Iterator[tuple[str, Any]]:
    """``(stage name, definition)`` for every stage; a ``foreach`` stage yields its ``do`` body."""
    for name, stage in (document.get("stages") or {}).items():
        yield name, stage.get("do", stage)


def entry_module(body: Any) -> str | None:
    match = ENTRY.search(str(body.get("cmd", "")))
    return match.group(1) if match else None


def stale_stages(document: Any, graph: ImportGraph) -> dict[str, tuple[list[str], list[str]]]:
    """Stage -> (closure files missing from its deps, code deps outside its closure)."""
    problems = {}
    for name, body in stage_bodies(document):
        module = entry_module(body)
        if module is None:
            continue
        wanted = set(graph.closure_files([module]))
        present = {dep for dep in body.get("deps", []) if is_code_dep(dep)}
        missing, extra = sorted(wanted - present), sorted(present - wanted)
        if missing or extra:
            problems[name] = (missing, extra)
    return problems


def sync(document: Any, graph: ImportGraph) -> list[str]:
    """Rewrite each stage's code deps in place (the closure first, then the other deps)."""
    changed = []
    for name, body in stage_bodies(document):
        module = entry_module(body)
        if module is None:
            continue
        deps = list(body.get("deps", []))
        others = [dep for dep in deps if not is_code_dep(dep)]
        new = [*graph.closure_files([module]), *others]
        if [str(d) if isinstance(d, str) else d for d in deps] != new:
            body["deps"] = new
            changed.append(name)
    return changed


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def main(argv: Sequence[str] | None = None, prog: str = "mgm deps") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=DEFAULT_FILE, help=f"the file to update (default {DEFAULT_FILE})")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if any stage is stale")
    args = parser.parse_args(argv)
    path = Path(args.file)
    if not path.is_file():
        print(f"{prog}: error: {path} does not exist", file=sys.stderr)
        return 2
    yaml = _yaml()
    document = yaml.load(path.read_text())
    graph = ImportGraph()
    if args.check:
        problems = stale_stages(document, graph)
        for name, (missing, extra) in problems.items():
            for file in missing:
                print(f"{path}: stage {name}: missing code dep {file} (its entry point imports it)")
            for file in extra:
                print(f"{path}: stage {name}: code dep {file} is not imported by its entry point")
        if problems:
            print(f"run `{prog}` to update {path}", file=sys.stderr)
            return 1
        print(f"{path}: the code deps of every stage equal its import closure")
        return 0
    changed = sync(document, graph)
    if changed:
        with path.open("w") as stream:
            yaml.dump(document, stream)
    print(f"{path}: updated {', '.join(changed)}" if changed else f"{path}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
