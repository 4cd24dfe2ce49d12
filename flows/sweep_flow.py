"""The sweep flow: one DVC experiment per value of ``mix.synthetic_ratio``, then a comparison.

Every value is checked (finite, >= 0, and against the param's own rules) before any experiment
runs. Each experiment is ``dvc exp run -S mix.synthetic_ratio=<r>`` in the workspace, one Prefect
task each with the flow's retries; results come from ``dvc exp show --json`` and are written to
``flow.sweep_out`` (``sweep.csv``, ``sweep.md``, ``sweep.png``) and published as the
``sweep-results`` and ``sweep-plot`` artifacts. As with any workspace ``dvc exp run``, the
workspace ends up holding the last experiment; ``dvc exp apply <name>`` brings back another.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run as current_task_run

from flows.artifacts import publish_sweep_artifacts
from flows.dvc_stages import DvcError, DvcRunFailed
from flows.experiments import experiment_name, experiments_by_name, run_experiment, show_experiments
from flows.params_file import (
    RATIO_PARAM,
    load_flow_params,
    lookup,
    params_path,
    read_raw_params,
    validate_known,
    with_overrides,
)
from flows.sweep_report import choose_plot_metrics, sweep_rows, varying_columns, write_sweep_files
from pipeline.config import FlowParams, validate_params
from pipeline.errors import ParamsError


def yaml_number(value: float) -> str:
    """``value`` as a YAML float without exponent (``1e-05`` would read back as a string)."""
    text = format(value, ".12f").rstrip("0")
    return text + "0" if text.endswith(".") else text


def check_sweep(repo: str | Path, ratios: Sequence[float], overrides: Sequence[str] = ()) -> list[float]:
    """The sweep values as floats, or a :class:`ParamsError` before anything runs.

    The project's ``params.yaml`` must define ``mix.synthetic_ratio``; each value must be finite,
    >= 0 and given once, and must pass the param's own validation when the library knows it.
    """
    raw = read_raw_params(repo)
    try:
        lookup(raw, RATIO_PARAM)
    except KeyError:
        raise ParamsError(
            f"{params_path(repo)}: {RATIO_PARAM} is missing; a sweep varies this param (synthetic samples "
            "per labelled sample), which the MGM stages add to params.yaml and dvc.yaml"
        ) from None
    try:
        values = [float(ratio) for ratio in ratios]
    except (TypeError, ValueError) as err:
        raise ParamsError(f"sweep ratios {list(ratios)!r}: not numbers ({err})") from None
    validate_params({"flow": {"sweep_ratios": values}}, where="sweep ratios")
    for value in values:
        assigned = with_overrides(raw, [*overrides, f"{RATIO_PARAM}={yaml_number(value)}"])
        validate_known(assigned, where=f"{params_path(repo)} with {RATIO_PARAM}={value:g}")
    return values


@task(name="dvc-experiment", cache_policy=NO_CACHE, persist_result=False)
def run_ratio_experiment(
    repo: str, name: str, assignments: list[str], settings: FlowParams
) -> dict[str, Any]:
    """``dvc exp run`` of one ratio, streaming its output into the log."""
    logger = get_run_logger()
    attempt = current_task_run.run_count or 1
    logger.info(
        "experiment %s: -S %s (attempt %d of %d)",
        name,
        " -S ".join(assignments),
        attempt,
        settings.retries + 1,
    )
    try:
        result = run_experiment(
            repo,
            name,
            assignments,
            logger.info,
            tail_lines=settings.error_lines,
            progress_interval=settings.progress_interval_seconds,
        )
    except DvcRunFailed as err:
        logger.error("%s", err)
        raise
    return {"experiment": name, "seconds": result.seconds, "attempts": attempt}


@flow(name="mgm-ratio-sweep")
def sweep_flow(
    repo: str = ".", ratios: Sequence[float] | None = None, overrides: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """One DVC experiment per ratio (default ``flow.sweep_ratios``); ``overrides`` apply to each."""
    logger = get_run_logger()
    root = Path(repo).resolve()
    settings = load_flow_params(root, overrides)
    values = check_sweep(root, settings.sweep_ratios if ratios is None else ratios, overrides)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    names: dict[str, float] = {}
    for value in values:
        name = experiment_name(value, stamp)
        run = run_ratio_experiment.with_options(
            task_run_name=f"{RATIO_PARAM}={value:g}",
            retries=settings.retries,
            retry_delay_seconds=settings.retry_delay_seconds,
        )
        run(str(root), name, [*overrides, f"{RATIO_PARAM}={yaml_number(value)}"], settings)
        names[name] = value
    found = experiments_by_name(show_experiments(root))
    missing = [name for name in names if name not in found]
    if missing:
        raise DvcError(f"{root}: dvc exp show does not list the experiments {missing}")
    rows = sweep_rows([(value, found[name]) for name, value in names.items()])
    plot_metrics, unmatched = choose_plot_metrics(rows, settings.sweep_metrics)
    if unmatched:
        logger.warning("flow.sweep_metrics: %s match no metric of the experiments", unmatched)
    files = write_sweep_files(rows, plot_metrics, root / settings.sweep_out, RATIO_PARAM)
    publish_sweep_artifacts(rows, varying_columns(rows), files, RATIO_PARAM)
    logger.info(
        "wrote %s; the workspace holds experiment %s (dvc exp apply <name> picks another)",
        ", ".join(str(path.relative_to(root)) for path in files.values()),
        list(names)[-1],
    )
    return rows
