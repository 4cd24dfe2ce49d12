"""What every stage entry point shares: ``--params``/``--set`` parsing and error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pipeline.config import DEFAULT_PARAMS_FILE, Params, load_params
from pipeline.errors import PipelineError
from pipeline.lifecycle import stop_with_parent

StageRunner = Callable[[Params, argparse.Namespace], None]


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params FILE`` and repeated ``--set key=value``."""
    parser.add_argument(
        "--params",
        default=DEFAULT_PARAMS_FILE,
        metavar="FILE",
        help=f"params file (default: {DEFAULT_PARAMS_FILE})",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one param, e.g. --set data.label_fraction=0.5 (repeatable; value parsed as YAML)",
    )


def build_parser(prog: str, description: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """A parser with the shared arguments plus the stage's own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_params_arguments(parser)
    add_arguments(parser)
    return parser


def run_stage(parser: argparse.ArgumentParser, runner: StageRunner, argv: Sequence[str] | None) -> int:
    """Parse ``argv``, validate params before any work, run; report pipeline errors in one line."""
    args = parser.parse_args(argv)
    if argv is None:  # a process of its own (python -m stages.X, mgm X): it ends with its parent
        stop_with_parent()
    try:
        params = load_params(args.params, args.overrides)
        runner(params, args)
    except PipelineError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an unwritable folder, a full disk, a file in the way: one line, no traceback
        print(f"{parser.prog}: error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    return 0


def describe_os_error(err: OSError) -> str:
    """``path: cause`` (both paths of a rename), e.g. ``models/mt: Read-only file system``."""
    paths = [str(name) for name in (err.filename, err.filename2) if name is not None]
    cause = err.strerror or str(err)
    return f"{' -> '.join(paths)}: {cause}" if paths else cause
