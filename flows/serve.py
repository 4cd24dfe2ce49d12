"""``mgm flow serve``: the pipeline flow and the ratio sweep as Prefect deployments of one project.

``serve`` registers two deployments on the server in ``PREFECT_API_URL``
(``mgm-pipeline/pipeline`` and ``mgm-ratio-sweep/sweep``, their parameters defaulting to this project;
the sweep's ratios to ``flow.sweep_ratios`` as params.yaml holds it when a run starts) and runs
each flow run started from the UI, ``prefect deployment run`` or the API, in a subprocess, until
Ctrl-C. The flows are named by module path, so a run needs only the installed package and the
project folder, not the directory ``serve`` was started in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.params_file import load_flow_params

PIPELINE_DEPLOYMENT = "pipeline"
SWEEP_DEPLOYMENT = "sweep"


def _targets(root: Path) -> list[tuple[Any, str, str, dict[str, Any], str]]:
    """(flow, its file entrypoint, deployment name, default parameters, description) of both
    deployments, shared by :func:`build_deployments` and :func:`deploy_to_pool`."""
    from flows.pipeline_flow import pipeline_flow
    from flows.sweep_flow import sweep_flow

    return [
        (pipeline_flow, "flows/pipeline_flow.py:pipeline_flow", PIPELINE_DEPLOYMENT,
         {"repo": str(root), "overrides": [], "force": False, "stages": []},
         f"The DVC stages of {root} (`stages`: a subset and its upstream; `overrides`: key=value)"),
        (sweep_flow, "flows/sweep_flow.py:sweep_flow", SWEEP_DEPLOYMENT,
         {"repo": str(root), "ratios": None, "overrides": []},
         f"One DVC experiment per mix.synthetic_ratio in `ratios` (null: flow.sweep_ratios of "
         f"params.yaml when the run starts), in {root}"),
    ]  # fmt: skip


def build_deployments(repo: str | Path, suffix: str = "") -> list[Any]:
    """The two ``RunnerDeployment`` objects for the project at ``repo`` (validated params first)."""
    from prefect.deployments.runner import EntrypointType

    root = Path(repo).resolve()
    load_flow_params(root)  # bad params: an error before anything is registered
    return [
        flow_object.to_deployment(
            name=name + suffix,
            parameters=parameters,
            description=description,
            entrypoint_type=EntrypointType.MODULE_PATH,
            tags=["mgm-pipeline"],
            version=None,
        )
        for flow_object, _, name, parameters, description in _targets(root)
    ]


def serve_project(repo: str | Path, suffix: str = "", limit: int | None = 1) -> None:
    """Register the deployments and run their flow runs until interrupted (``limit`` at a time:
    DVC locks the workspace for each ``dvc repro``, so one run of a project at a time by default)."""
    from prefect import serve

    serve(*build_deployments(repo, suffix), limit=limit)


CODE_ROOT = Path(__file__).resolve().parents[1]
"""The folder holding ``flows/``: where a worker loads the flow code from (a local source)."""


def deploy_to_pool(repo: str | Path, pool: str, suffix: str = "", source: str | None = None) -> list[str]:
    """Register the two deployments on work pool ``pool``; return their ``flow/deployment`` names.

    A worker of the pool (``prefect worker start --pool <pool>``) then runs each flow run. With the
    default ``source`` (this checkout) the worker must see the same folders, as a process worker
    on this machine does; for workers elsewhere pass the git URL of the project as ``source`` (and
    for Docker or Kubernetes pools give the pool an image with the project installed): the project
    folder in ``repo`` must exist on the worker, with its data pulled from the DVC remote.
    """
    root = Path(repo).resolve()
    load_flow_params(root)
    code = source or str(CODE_ROOT)
    names = []
    for flow_object, entrypoint, name, parameters, description in _targets(root):
        remote = flow_object.from_source(source=code, entrypoint=entrypoint)
        remote.deploy(
            name=name + suffix,
            work_pool_name=pool,
            parameters=parameters,
            description=description,
            tags=["mgm-pipeline"],
            concurrency_limit=1,  # DVC locks the workspace: one run of a deployment at a time
            build=False,
            push=False,
            print_next_steps=False,
        )
        names.append(f"{flow_object.name}/{name + suffix}")
    return names
