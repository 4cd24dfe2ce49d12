"""The first-party files a module runs: its import closure over the project's own packages.

Why: a DVC stage must depend on exactly the code it executes, and a training run may resume only a
checkpoint written by the same code. Both follow from one computation, so they cannot disagree.

The closure is read from the source with :mod:`ast`, never by importing (no torch start-up, no side
effects). Every ``import`` counts, including those inside functions (they run when the function
does); importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``. A module may list the
non-Python files it reads at run time in a module-level ``__data_files__`` tuple of paths relative
to its own folder (for example packaged tables); they join the closure.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("pipeline", "stages", "flows")


class ImportGraph:
    """Modules of the first-party packages under ``root`` and the first-party modules each imports."""

    def __init__(self, root: Path = PROJECT_ROOT, packages: Sequence[str] = FIRST_PARTY) -> None:
        self.root = root
        self.packages = tuple(packages)

    def path_of(self, module: str) -> Path | None:
        """The source file of ``module`` (a package's ``__init__.py``), or ``None`` if it is not ours."""
        if module.split(".")[0] not in self.packages:
            return None
        base = self.root.joinpath(*module.split("."))
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        return None

    def is_package(self, module: str) -> bool:
        path = self.path_of(module)
        return path is not None and path.name == "__init__.py"

    @functools.cache  # noqa: B019 - one graph per root, kept for the process
    def imports(self, module: str) -> tuple[str, ...]:
        """First-party modules ``module`` imports anywhere in its body (sorted, without itself)."""
        path = self.path_of(module)
        if path is None:
            raise ValueError(f"{module} is not a module under {self.root} ({', '.join(self.packages)})")
        tree = ast.parse(path.read_text(), filename=str(path))
        package = module if self.is_package(module) else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.update(self._with_parents(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node, package)
                found.update(self._with_parents(base))
                for alias in node.names:
                    found.update(self._with_parents(f"{base}.{alias.name}"))
        found.discard(module)
        return tuple(sorted(found))

    def _absolute(self, node: ast.ImportFrom, package: str) -> str:
        if not node.level:
            return node.module or ""
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        return ".".join([*parts, *([node.module] if node.module else [])])

    def _with_parents(self, name: str) -> list[str]:
        """``a.b.c`` -> the existing first-party modules among ``a``, ``a.b``, ``a.b.c``."""
        parts = name.split(".")
        names = [".".join(parts[: i + 1]) for i in range(len(parts))]
        return [n for n in names if self.path_of(n) is not None]

    def data_files(self, module: str) -> list[Path]:
        """The files named by the module's ``__data_files__`` (relative to its folder)."""
        path = self.path_of(module)
        assert path is not None
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "__data_files__" for target in node.targets
            ):
                return [path.parent / name for name in ast.literal_eval(node.value)]
        return []

    def closure(self, modules: Iterable[str]) -> list[str]:
        """Every first-party module that importing ``modules`` runs (sorted, the modules included)."""
        seen: set[str] = set()
        pending = [name for module in modules for name in self._with_parents(module)]
        missing = [module for module in modules if self.path_of(module) is None]
        if missing:
            raise ValueError(f"not first-party modules under {self.root}: {', '.join(missing)}")
        while pending:
            module = pending.pop()
            if module in seen:
                continue
            seen.add(module)
            pending.extend(self.imports(module))
        return sorted(seen)

    def closure_files(self, modules: Iterable[str]) -> list[str]:
        """The closure as POSIX paths relative to the root (sources and declared data files), sorted."""
        files: set[Path] = set()
        for module in self.closure(modules):
            path = self.path_of(module)
            assert path is not None
            files.add(path)
            files.update(self.data_files(module))
        return sorted(path.relative_to(self.root).as_posix() for path in files)

    def all_modules(self, package: str) -> list[str]:
        """Every module of ``package`` (recursively), by dotted name."""
        folder = self.root / package
        names = []
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(self.root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
        return names

    def cycles(self, package: str) -> list[list[str]]:
        """Import cycles among the modules of ``package`` (each as a list of module names).

        A package's ``__init__`` that its own submodules run on import is not counted as a cycle
        edge (``a.b`` importing ``a`` is how Python imports ``a.b``): only explicit imports are.
        """
        modules = set(self.all_modules(package))
        edges = {
            module: [m for m in self.imports(module) if m in modules and not module.startswith(f"{m}.")]
            for module in modules
        }
        return _strongly_connected(edges)


def _strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm: components of more than one node, or with a self-loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, []):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


@functools.cache
def _default_graph() -> ImportGraph:
    return ImportGraph()


def code_files(*modules: str) -> list[str]:
    """The import closure of ``modules`` in this project, as repository-relative paths."""
    return _default_graph().closure_files(modules)


def code_fingerprint(*modules: str, graph: ImportGraph | None = None) -> str:
    """sha256 over the path and bytes of every file in the closure of ``modules``.

    A training loop passes its own module: a checkpoint written by other code is then never resumed.
    """
    graph = graph or _default_graph()
    digest = hashlib.sha256()
    for name in graph.closure_files(modules):
        digest.update(name.encode() + b"\0" + (graph.root / name).read_bytes() + b"\0")
    return digest.hexdigest()
