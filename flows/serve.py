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


def build_deployments(repo: str | Path, suffix: str = "") -> list[Any]:
    """The two ``RunnerDeployment`` objects for the project at ``repo`` (validated params first)."""
    from prefect.deployments.runner import EntrypointType

    from flows.pipeline_flow import pipeline_flow
    from flows.sweep_flow import sweep_flow

    root = Path(repo).resolve()
    load_flow_params(root)  # bad params: an error before anything is registered
    common = {"entrypoint_type": EntrypointType.MODULE_PATH, "tags": ["mgm-pipeline"], "version": None}
    pipeline = pipeline_flow.to_deployment(
        name=PIPELINE_DEPLOYMENT + suffix,
        parameters={"repo": str(root), "overrides": [], "force": False, "stages": []},
        description=f"The DVC stages of {root} (`stages`: a subset and its upstream; `overrides`: key=value)",
        **common,
    )
    sweep = sweep_flow.to_deployment(
        name=SWEEP_DEPLOYMENT + suffix,
        parameters={"repo": str(root), "ratios": None, "overrides": []},
        description=f"One DVC experiment per mix.synthetic_ratio in `ratios` (null: flow.sweep_ratios "
        f"of params.yaml when the run starts), in {root}",
        **common,
    )
    return [pipeline, sweep]


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
    from flows.pipeline_flow import pipeline_flow
    from flows.sweep_flow import sweep_flow

    root = Path(repo).resolve()
    load_flow_params(root)
    code = source or str(CODE_ROOT)
    targets = [
        (pipeline_flow, "flows/pipeline_flow.py:pipeline_flow", PIPELINE_DEPLOYMENT,
         {"repo": str(root), "overrides": [], "force": False, "stages": []}),
        (sweep_flow, "flows/sweep_flow.py:sweep_flow", SWEEP_DEPLOYMENT,
         {"repo": str(root), "ratios": None, "overrides": []}),
    ]  # fmt: skip
    names = []
    for flow_object, entrypoint, name, parameters in targets:
        remote = flow_object.from_source(source=code, entrypoint=entrypoint)
        remote.deploy(
            name=name + suffix,
            work_pool_name=pool,
            parameters=parameters,
            tags=["mgm-pipeline"],
            concurrency_limit=1,  # DVC locks the workspace: one run of a deployment at a time
            build=False,
            push=False,
            print_next_steps=False,
        )
        names.append(f"{flow_object.name}/{name + suffix}")
    return names
