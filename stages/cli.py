"""The ``mgm`` command: ``mgm <command> [--params FILE] [--set key=value ...]``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from stages import COMMANDS, FLOW_COMMANDS, TOOL_COMMANDS


def usage() -> str:
    lines = ["usage: mgm <command> [--params FILE] [--set KEY=VALUE ...] [options]", "", "commands:"]
    commands = {**COMMANDS, **TOOL_COMMANDS, **FLOW_COMMANDS}
    lines += [f"  {name:<10} {description}" for name, description in commands.items()]
    lines += ["", "`mgm <command> --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] == "--version":
        from pipeline import __version__

        print(f"mgm-pipeline {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name in FLOW_COMMANDS:
        return importlib.import_module("flows.cli").main(args, prog="mgm")
    if name in TOOL_COMMANDS:
        return importlib.import_module(f"stages.{name}").main(rest, prog=f"mgm {name}")
    if name not in COMMANDS:
        print(f"mgm: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return importlib.import_module(f"stages.{name}").main(rest, prog=f"mgm {name}")


if __name__ == "__main__":
    sys.exit(main())
