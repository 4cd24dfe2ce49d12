"""The pipeline flow: one Prefect task per DVC stage of ``dvc.yaml``, upstream first, in file order.

Each task runs ``dvc repro --single-item <stage>``, so DVC decides what is up to date and versions
every output in ``dvc.lock``; a failed stage leaves its ``dvc.lock`` entry as it was. The stage's
output goes line by line to the task's log; retries and their delay come from the ``flow`` params.
Artifacts: ``metrics-<stage>`` and ``grids-<stage>`` after each stage that ran or was restored
(an up-to-date stage's outputs are those of its last run: its artifacts are published only when
the server has none yet), then ``stage-durations`` and ``dvc-outputs``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import task_run as current_task_run
from prefect.utilities.annotations import quote

from flows.artifacts import (
    publish_run_summary,
    publish_stage_artifacts,
    published_keys,
    stage_artifact_keys,
)
from flows.dvc_stages import (
    Stage,
    StageFailed,
    default_remote,
    discover_stages,
    run_stage,
    select_stages,
)
from flows.params_file import load_flow_params, params_path, write_overrides
from pipeline.atomic import write_bytes_atomic
from pipeline.config import FlowParams


@task(name="dvc-stage", cache_policy=NO_CACHE, persist_result=False)
def run_dvc_stage(repo: str, stage: Stage, settings: FlowParams, force: bool = False) -> str:
    """Run one DVC stage, streaming its output into the log, publish its metrics and grids; JSON summary."""
    logger = get_run_logger()
    attempt = current_task_run.run_count or 1
    logger.info("dvc repro --single-item %s (attempt %d of %d)", stage.name, attempt, settings.retries + 1)
    try:
        result = run_stage(
            repo,
            stage.name,
            logger.info,
            force=force,
            tail_lines=settings.error_lines,
            progress_interval=settings.progress_interval_seconds,
        )
    except StageFailed as err:
        logger.error("%s", err)
        raise
    keys: list[str] = []
    # an up-to-date stage's outputs are those of its last run, whose artifacts stand: publish them
    # only when none exist yet (outputs made by a plain `dvc repro`, or another server)
    if result.status != "up to date" or not published_keys(stage_artifact_keys(stage)):
        keys = publish_stage_artifacts(
            Path(repo), stage, settings.grid_images, settings.grid_max_side, settings.artifact_max_kb
        )
    logger.info(
        "stage %s: %s in %.1f s; artifacts %s", stage.name, result.status, result.seconds, keys or "none"
    )
    return json.dumps({**asdict(result), "attempts": attempt})


@flow(name="mgm-pipeline")
def pipeline_flow(
    repo: str = ".", overrides: Sequence[str] = (), force: bool = False, stages: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Run the DVC stages of the project at ``repo`` (``stages`` and their upstream; none = all);
    ``overrides`` (``key=value``) go to params.yaml."""
    logger = get_run_logger()
    root = Path(repo).resolve()
    settings = load_flow_params(root, overrides)  # every known section validated before any stage runs
    original = params_path(root).read_bytes()
    changed = write_overrides(root, overrides)
    if changed:
        logger.info("params.yaml: set %s", ", ".join(changed))
    try:
        return _run_stages(root, settings, force, logger, stages)
    except BaseException:
        if changed:  # a failed run leaves params.yaml as the user had it, so the next repro is theirs
            write_bytes_atomic(params_path(root), original)
            logger.error(
                "params.yaml: the --set values (%s) were rolled back because the run failed; stages that "
                "finished before the failure are recorded in dvc.lock with them",
                ", ".join(changed),
            )
        raise


def _run_stages(
    root: Path,
    settings: FlowParams,
    force: bool,
    logger: logging.Logger | logging.LoggerAdapter,
    names: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Run the discovered stages (``names`` and their upstream) in order, each as a task waiting on
    its DVC upstream."""
    stages = select_stages(discover_stages(root), names)
    logger.info("stages in order: %s", ", ".join(stage.name for stage in stages))
    runs: list[dict[str, Any]] = []
    finished: dict[str, State] = {}
    try:
        for stage in stages:
            run = run_dvc_stage.with_options(
                task_run_name=stage.name,
                retries=settings.retries,
                retry_delay_seconds=settings.retry_delay_seconds,
            )
            started = time.monotonic()
            upstream = [finished[name] for name in stage.upstream if name in finished]
            try:
                # wait_for records DVC's edges, so the UI draws the same graph as `dvc dag`; quote() and
                # JSON results keep Prefect from inferring other edges from values shared between tasks
                state = run(
                    str(root), quote(stage), quote(settings), force, wait_for=upstream, return_state=True
                )
                outcome = json.loads(state.result())
                finished[stage.name] = state
                runs.append({**outcome, "seconds": time.monotonic() - started})  # retries included
            except StageFailed:
                runs.append(
                    {
                        "stage": stage.name,
                        "status": "failed",
                        "seconds": time.monotonic() - started,
                        "attempts": settings.retries + 1,
                    }
                )
                raise
    finally:
        publish_run_summary(root, stages, runs, default_remote(root))
    return runs
