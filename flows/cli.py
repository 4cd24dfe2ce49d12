"""``mgm flow run``, ``mgm flow sweep`` and ``mgm ui`` (Prefect is imported only when these run)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from flows.env import offline_env
from pipeline.errors import PipelineError

SET_HELP = "override one param, e.g. --set train_mt.epochs=5 (repeatable; value parsed as YAML)"


def build_parser(prog: str = "mgm") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Prefect flows over the DVC stages, and the UI.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{flow,ui}")

    flow = commands.add_parser("flow", help="run the pipeline or a ratio sweep as a Prefect flow")
    flows = flow.add_subparsers(dest="flow", required=True, metavar="{run,sweep,serve,deploy}")
    run = flows.add_parser(
        "run",
        help="every DVC stage of dvc.yaml, one Prefect task each",
        description="Run every DVC stage of dvc.yaml as one Prefect task each (dvc repro --single-item). "
        "--set values are written into params.yaml first (comments kept), so dvc.lock records them. "
        "Runs against the server in PREFECT_API_URL, else in-process.",
    )
    run.add_argument(
        "stages", nargs="*", metavar="STAGE", help="run only these stages and their upstream (default: all)"
    )
    run.add_argument("--force", action="store_true", help="rerun stages that are up to date")
    sweep = flows.add_parser(
        "sweep",
        help="one DVC experiment per mix.synthetic_ratio value",
        description="Run `dvc exp run -S mix.synthetic_ratio=<r>` per ratio, then compare the experiments "
        "(files under flow.sweep_out and Prefect artifacts). Values are checked before any experiment runs.",
    )
    sweep.add_argument(
        "--ratios",
        type=parse_ratios,
        default=None,
        metavar="R,R,...",
        help="comma-separated ratios, e.g. 0,0.5,1 (default: flow.sweep_ratios in params.yaml)",
    )
    serve = flows.add_parser(
        "serve",
        help="serve the pipeline and the sweep as deployments (start runs from the UI)",
        description="Register deployments mgm-pipeline/pipeline and mgm-ratio-sweep/sweep for this project "
        "on the server in PREFECT_API_URL and run their flow runs until Ctrl-C. Start a run from the UI, "
        "with `prefect deployment run mgm-pipeline/pipeline`, or through the API.",
    )
    serve.add_argument("--repo", default=".", metavar="DIR", help="root of the DVC project (default: .)")
    serve.add_argument(
        "--suffix", default="", help="appended to the deployment names (several projects on one server)"
    )
    serve.add_argument(
        "--limit", type=int, default=1, help="flow runs at once (default 1: DVC locks the workspace)"
    )
    deploy = flows.add_parser(
        "deploy",
        help="register the pipeline and the sweep on a work pool (workers run them)",
        description="Register deployments mgm-pipeline/pipeline and mgm-ratio-sweep/sweep of this project on "
        "work pool --pool of the server in PREFECT_API_URL; `prefect worker start --pool <pool>` runs them "
        "(docs/flows.md: process pools here, Docker or Kubernetes pools elsewhere).",
    )
    deploy.add_argument("--pool", required=True, help="work pool name (create it: prefect work-pool create)")
    deploy.add_argument("--repo", default=".", metavar="DIR", help="root of the DVC project (default: .)")
    deploy.add_argument("--suffix", default="", help="appended to the deployment names")
    deploy.add_argument(
        "--source",
        default=None,
        help="where workers get the flow code (default: this checkout; or a git URL)",
    )
    for sub in (run, sweep):
        sub.add_argument("--repo", default=".", metavar="DIR", help="root of the DVC project (default: .)")
        sub.add_argument(
            "--profile",
            metavar="NAME",
            help="apply params profile profiles/NAME.yaml first (e.g. quickstart; --set values win)",
        )
        sub.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP
        )

    ui = commands.add_parser(
        "ui",
        help="start a local Prefect server and UI (Ctrl-C stops it)",
        description="Start `prefect server start` bound to 127.0.0.1 with telemetry off and PREFECT_HOME "
        "defaulting to <repo>/.prefect; print the URL; Ctrl-C stops it.",
    )
    ui.add_argument("--repo", default=".", metavar="DIR", help="project whose .prefect/ holds the database")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    ui.add_argument("--port", type=int, default=4200, help="port (default: 4200; 0 = any free port)")
    return parser


def parse_ratios(text: str) -> list[float]:
    """``"0,0.5,1"`` -> ``[0.0, 0.5, 1.0]`` (range checks happen in the sweep flow)."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not a number (give e.g. 0,0.5,1)"
            ) from None
    return values


def main(argv: Sequence[str] | None = None, prog: str = "mgm") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    offline_env(args.repo)  # before the first import of prefect
    where = f"{prog} {args.command}" + (f" {args.flow}" if args.command == "flow" else "")
    try:
        if args.command == "ui":
            from flows.ui import serve

            return serve(args.repo, args.host, args.port)
        if args.flow in ("serve", "deploy"):
            return _serve(args)
        if args.profile:
            from pipeline.profiles import as_overrides, read_profile

            args.overrides = [*as_overrides(read_profile(args.repo, args.profile)), *args.overrides]
        if args.flow == "run":
            return _run_pipeline(args)
        return _run_sweep(args)
    except PipelineError as err:
        print(f"{where}: error: {err}", file=sys.stderr)
        return 2 if _is_input_error(err) else 1


def _is_input_error(err: PipelineError) -> bool:
    from flows.dvc_stages import DvcRunFailed

    return not isinstance(err, DvcRunFailed)


def _check_api() -> None:
    """With ``PREFECT_API_URL`` set, the server must answer (else flows would fail after a long wait)."""
    from flows.ui import ServerError, api_reachable

    url = os.environ.get("PREFECT_API_URL")
    if url and not api_reachable(url):
        raise ServerError(
            f"PREFECT_API_URL={url} does not answer: start the server (`mgm ui`) or unset PREFECT_API_URL "
            "to run in-process"
        )


def _serve(args: argparse.Namespace) -> int:
    from flows.params_file import load_flow_params

    load_flow_params(args.repo)  # bad params: an error before anything is registered
    if not os.environ.get("PREFECT_API_URL"):
        from flows.ui import ServerError

        raise ServerError(
            "PREFECT_API_URL is not set: deployments need a running server. Start one with `mgm ui` "
            f"(it prints the line to export), then run `mgm flow {args.flow}` again"
        )
    _check_api()
    from flows.serve import deploy_to_pool, serve_project

    if args.flow == "deploy":
        names = deploy_to_pool(args.repo, args.pool, args.suffix, args.source)
        print(f"registered {', '.join(names)} on work pool {args.pool!r}; run them with a worker:")
        print(f"  prefect worker start --pool {args.pool}")
        return 0
    print(f"serving mgm-pipeline/pipeline{args.suffix} and mgm-ratio-sweep/sweep{args.suffix} (Ctrl-C stops)")
    serve_project(args.repo, args.suffix, args.limit)
    return 0


def _run_pipeline(args: argparse.Namespace) -> int:
    from flows.params_file import load_flow_params

    load_flow_params(args.repo, args.overrides)  # bad params: an error before a flow run exists
    if args.stages:
        from flows.dvc_stages import discover_stages, select_stages

        select_stages(discover_stages(args.repo), args.stages)  # an unknown name: before a flow run exists
    _check_api()
    from flows.pipeline_flow import pipeline_flow

    runs = pipeline_flow(str(Path(args.repo).resolve()), list(args.overrides), args.force, args.stages)
    for run in runs:
        print(f"{run['stage']:<24} {run['status']:<10} {run['seconds']:8.1f} s  attempts {run['attempts']}")
    return 0


def _run_sweep(args: argparse.Namespace) -> int:
    from flows.params_file import load_flow_params

    settings = load_flow_params(args.repo, args.overrides)
    from flows.sweep_flow import check_sweep, sweep_flow

    ratios = settings.sweep_ratios if args.ratios is None else args.ratios
    check_sweep(args.repo, ratios, args.overrides)  # out-of-range values fail before any experiment
    _check_api()
    rows = sweep_flow(str(Path(args.repo).resolve()), ratios, list(args.overrides))
    for row in rows:
        print(f"ratio {row['ratio']:<6g} experiment {row['experiment']} ({row['rev']})")
    print(f"comparison: {Path(args.repo) / settings.sweep_out}/sweep.md")
    return 0
