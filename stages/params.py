"""``mgm params``: write ``docs/params.md`` and ``params.yaml``'s comments from ``pipeline/config.py``.

``--check`` changes nothing and exits 1 when either file differs from what it would write. The
values written to ``params.yaml`` are the defaults (the small CPU profile): change a default in
``pipeline/config.py``, then run ``mgm params``.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.atomic import write_bytes_atomic
from pipeline.params_reference import params_markdown, params_yaml

TARGETS = {"params.yaml": params_yaml, "docs/params.md": params_markdown}


def main(argv: Sequence[str] | None = None, prog: str = "mgm params") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="the project folder (default: the current one)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, render in TARGETS.items():
        path = Path(args.root) / name
        wanted = render()
        current = path.read_text() if path.is_file() else ""
        if current == wanted:
            continue
        stale.append(name)
        if args.check:
            diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), name, "generated")
            print("\n".join(line.rstrip("\n") for line in list(diff)[:40]))
        else:
            write_bytes_atomic(path, wanted.encode())
    if args.check and stale:
        print(f"{prog}: {', '.join(stale)} out of date: run `{prog}`", file=sys.stderr)
        return 1
    print(f"updated {', '.join(stale)}" if stale and not args.check else "params reference up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
