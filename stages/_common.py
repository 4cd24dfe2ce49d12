"""What every stage entry point shares: ``--params``/``--set`` parsing and error reporting."""

from __future__ import annotations

import argparse
import os
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


def build_parser(
    prog: str,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    sections: tuple[str, ...] = (),
):
    """A parser with the shared arguments plus the stage's own; ``--help`` ends with the params of
    ``sections`` (defaults and descriptions), so a stage documents what it reads."""
    from pipeline.params_reference import params_help

    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=params_help(sections) if sections else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_params_arguments(parser)
    add_arguments(parser)
    return parser


def run_stage(
    parser: argparse.ArgumentParser,
    runner: StageRunner,
    argv: Sequence[str] | None,
    *,
    distributed: bool = False,
) -> int:
    """Parse ``argv``, validate params before any work, run; report pipeline errors in one line.

    A stage without DDP (``distributed=False``) refuses to start under ``torchrun`` with more than
    one process: each rank would run the whole stage, racing on the same output files."""
    args = parser.parse_args(argv)
    try:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        print(
            f"{parser.prog}: error: WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number", file=sys.stderr
        )
        return 2
    if world > 1 and not distributed:
        # every rank says it: torchrun stops the others as soon as the first one exits
        rank = os.environ.get("RANK", "0")
        print(
            f"{parser.prog}: error (rank {rank}): started as {world} processes (torchrun, WORLD_SIZE="
            f"{world}), but this stage does not train with DDP: every process would run all of it on the "
            "same files. Run it as one process; under torchrun only train_mt trains data-parallel.",
            file=sys.stderr,
        )
        return 2
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
