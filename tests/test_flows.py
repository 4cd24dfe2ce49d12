"""Prefect flows over real DVC projects under ``prefect_test_harness``: order, artifacts, failures, sweeps."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import pytest
from PIL import Image

from flows.artifacts import artifact_key, flatten, images_markdown, metrics_table
from flows.cli import main as flow_cli
from flows.dvc_stages import (
    DvcError,
    Stage,
    discover_stages,
    read_lock,
    select_stages,
    stable_topological_order,
)
from flows.experiments import experiments_by_name, show_experiments
from flows.params_file import RATIO_PARAM, write_overrides
from flows.sweep_flow import check_sweep, sweep_flow
from flows.sweep_report import choose_plot_metrics, sweep_rows
from pipeline.errors import ParamsError
from tests._dvc_repo import REPO_ROOT, dvc
from tests._files import file_hashes
from tests._flow_projects import flaky_repo, sweep_repo, tiny_pipeline_repo

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:dvc.*")]


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _client_call(method: str, **kwargs):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return getattr(client, method)(**kwargs)


def _task_runs(flow_run_id):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = _client_call(
        "read_task_runs", flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    )
    return sorted(runs, key=lambda run: run.start_time or run.expected_start_time)


def _artifacts(flow_run_id):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    artifacts = _client_call(
        "read_artifacts",
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])),
    )
    return {artifact.key: artifact for artifact in artifacts}


def _logs(flow_run_id) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    logs = _client_call("read_logs", log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def _table(artifact) -> list[dict]:
    data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    return data


def _embedded_pngs(markdown: str) -> list[Image.Image]:
    parts = markdown.split("data:image/png;base64,")[1:]
    return [Image.open(io.BytesIO(base64.b64decode(part.split(")")[0]))) for part in parts]


# -- the real pipeline at toy size ---------------------------------------------------------------


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return tiny_pipeline_repo(tmp_path_factory.mktemp("flow") / "project")


def test_pipeline_flow_runs_every_stage_in_dvc_yaml_order(harness, project):
    from flows.pipeline_flow import pipeline_flow

    listed = dvc(project, "stage", "list", "--name-only").stdout.split()
    stages = discover_stages(project)
    assert [stage.name for stage in stages] == listed  # dvc.yaml order, foreach/matrix expanded

    state = pipeline_flow(str(project), ["train_mt.lr=0.002"], return_state=True)
    assert state.is_completed(), state.message
    runs = state.result()
    assert [run["stage"] for run in runs] == listed
    assert all(run["status"] == "ran" and run["attempts"] == 1 for run in runs)
    assert "lr: 0.002" in (project / "params.yaml").read_text()  # --set reached params.yaml ...
    lock = read_lock(project)
    assert set(lock) == set(listed)  # ... and every stage is versioned in dvc.lock
    assert "lr: 0.002" in (project / "dvc.lock").read_text()
    assert "up to date" in dvc(project, "status").stdout

    flow_run_id = state.state_details.flow_run_id
    task_runs = _task_runs(flow_run_id)
    assert [run.name for run in task_runs] == listed
    assert all(run.state.is_completed() for run in task_runs)

    artifacts = _artifacts(flow_run_id)
    expected = {artifact_key("metrics", stage.name) for stage in stages if stage.metrics}
    expected |= {"stage-durations", "dvc-outputs"}
    if "evaluate" in listed:
        expected |= {"grids-evaluate"}
    assert expected <= set(artifacts), sorted(artifacts)

    durations = _table(artifacts["stage-durations"])
    assert [row["stage"] for row in durations] == listed
    assert all(row["status"] == "ran" and row["seconds"] > 0 for row in durations)
    for stage in stages:
        if stage.metrics:
            rows = _table(artifacts[artifact_key("metrics", stage.name)])
            assert rows and set(rows[0]) >= {"metric"}
            assert len(set(rows[0]) - {"metric"}) == len(stage.metrics)
    if "evaluate" in listed:
        rows = {row["metric"]: row for row in _table(artifacts["metrics-evaluate"])}
        assert {"trivial", "st", "mt"} <= set(rows["seg_miou"])  # the flat headline of each variant
        grids = _embedded_pngs(artifacts["grids-evaluate"].data)
        assert len(grids) >= 2 and all(image.width > 32 for image in grids)
    outputs = artifacts["dvc-outputs"].data
    for name, entry in lock.items():
        for out in entry.get("outs", []):
            assert out["path"] in outputs and out["md5"] in outputs, (name, out["path"])

    logs = _logs(flow_run_id)
    assert "Running stage 'shard'" in logs and "wrote data/shards/real" in logs  # the stage's own output

    again = pipeline_flow(str(project), return_state=True)
    assert again.is_completed()
    assert [run["status"] for run in again.result()] == ["up to date"] * len(listed)
    rerun_artifacts = set(_artifacts(again.state_details.flow_run_id))
    assert rerun_artifacts == {"stage-durations", "dvc-outputs"}  # no stage's grids uploaded again


def test_sweep_over_the_real_pipeline(harness, project):
    rows = sweep_flow(str(project), [0.0, 0.5])
    assert [row["ratio"] for row in rows] == [0.0, 0.5]
    assert (project / "metrics" / "sweep" / "sweep.csv").is_file()
    at_zero, at_half = rows

    def metrics(row, stem):
        return {key.split(":", 1)[1]: value for key, value in row.items() if key.startswith(f"{stem}:")}

    assert metrics(at_zero, "mt") and metrics(at_zero, "mt") == metrics(at_half, "mt")  # mt ignores the ratio
    mgm_zero = {key: value for key, value in metrics(at_zero, "mgm-shards").items() if key != "delta_m"}
    mt_zero = {key: value for key, value in metrics(at_zero, "mt").items() if key != "delta_m"}
    assert mgm_zero and mgm_zero == mt_zero  # ratio 0: train_mt@mgm-shards is mt, step for step
    assert metrics(at_half, "mgm-shards") != metrics(at_zero, "mgm-shards")
    joint = metrics(at_half, "mgm")
    assert joint and joint == metrics(at_zero, "mgm")  # the joint loop's M ignores the ratio


def test_a_failing_stage_under_the_flow_leaves_every_earlier_output_and_params_yaml(harness, project):
    from flows.pipeline_flow import pipeline_flow

    if not (project / "dvc.lock").exists():  # when this test runs alone
        assert pipeline_flow(str(project), return_state=True).is_completed()
    folders = ("data", "models", "metrics", "reports", "plots")
    before = {name: file_hashes(project / name) for name in folders if (project / name).exists()}
    params = (project / "params.yaml").read_bytes()
    broken = ["data.source=nyuv2-mat", "data.path=data/sources/absent.mat"]
    state = pipeline_flow(str(project), broken, return_state=True)
    assert state.is_failed() and "absent.mat" in state.message
    assert {name: file_hashes(project / name) for name in before} == before
    assert (project / "params.yaml").read_bytes() == params


# -- a stage that fails ---------------------------------------------------------------------------


def test_failing_stage_fails_the_flow_after_its_retries_and_keeps_dvc_lock(harness, tmp_path):
    from flows.pipeline_flow import pipeline_flow

    repo = flaky_repo(tmp_path / "flaky", fail_first=99, retries=2)
    state = pipeline_flow(str(repo), return_state=True)
    assert state.is_failed()
    assert "flaky" in state.message and "deliberate test failure" in state.message
    assert (repo / "attempts.log").read_text().splitlines() == ["attempt 1", "attempt 2", "attempt 3"]

    flow_run_id = state.state_details.flow_run_id
    runs = {run.name: run for run in _task_runs(flow_run_id)}
    assert runs["prepare"].state.is_completed() and runs["prepare"].run_count == 1
    assert runs["flaky"].state.is_failed() and runs["flaky"].run_count == 3
    logs = _logs(flow_run_id)
    assert "flaky: attempt 3: the input is bad (deliberate test failure)" in logs
    assert "DVC stage 'flaky' failed with exit code" in logs

    lock = read_lock(repo)
    assert "prepare" in lock and "flaky" not in lock  # dvc.lock untouched for the failed stage
    assert not (repo / "flaky_out.txt").exists()
    durations = _table(_artifacts(flow_run_id)["stage-durations"])
    assert [(row["stage"], row["status"], row["attempts"]) for row in durations] == [
        ("prepare", "ran", 1),
        ("flaky", "failed", 3),
    ]


def test_a_failed_run_rolls_its_set_values_back_out_of_params_yaml(harness, tmp_path):
    from flows.pipeline_flow import pipeline_flow

    repo = flaky_repo(tmp_path / "flaky", fail_first=0, retries=0)
    before = (repo / "params.yaml").read_bytes()
    state = pipeline_flow(str(repo), ["toy.fail_first=99"], return_state=True)
    assert state.is_failed()
    assert (repo / "params.yaml").read_bytes() == before  # the next `dvc repro` runs the user's params
    logs = _logs(state.state_details.flow_run_id)
    assert "the --set values (toy.fail_first) were rolled back because the run failed" in logs


def test_retries_let_a_flaky_stage_succeed(harness, tmp_path):
    from flows.pipeline_flow import pipeline_flow

    repo = flaky_repo(tmp_path / "flaky", fail_first=1, retries=1)
    runs = pipeline_flow(str(repo))
    assert [(run["stage"], run["status"], run["attempts"]) for run in runs] == [
        ("prepare", "ran", 1),
        ("flaky", "ran", 2),
    ]
    assert "flaky" in read_lock(repo)
    assert (repo / "flaky_out.txt").read_text() == "ok after 2 attempts\n"


def test_bad_overrides_fail_before_any_stage(tmp_path, capsys):
    repo = flaky_repo(tmp_path / "bad", fail_first=0, retries=0)
    before = (repo / "params.yaml").read_text()
    assert flow_cli(["flow", "run", "--repo", str(repo), "--set", "flow.retries=-1"]) == 2
    assert "flow.retries" in capsys.readouterr().err
    assert flow_cli(["flow", "run", "--repo", str(repo), "--set", "trian_mt.epochs=2"]) == 2
    assert "trian_mt.epochs: unknown key" in capsys.readouterr().err
    assert (repo / "params.yaml").read_text() == before and not (repo / "dvc.lock").exists()


# -- the ratio sweep -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_project(tmp_path_factory):
    return sweep_repo(tmp_path_factory.mktemp("sweep") / "project")


def test_sweep_runs_one_experiment_per_ratio_and_compares_them(harness, sweep_project):
    state = sweep_flow(str(sweep_project), [0.0, 0.5, 1.25], return_state=True)
    assert state.is_completed(), state.message
    rows = state.result()
    assert [row["ratio"] for row in rows] == [0.0, 0.5, 1.25]
    assert [row["probe:ratio"] for row in rows] == [0.0, 0.5, 1.25]  # each experiment saw its ratio
    assert [row["probe:score"] for row in rows] == [0.75, 1.0, 0.4375]

    names = [row["experiment"] for row in rows]
    found = experiments_by_name(show_experiments(sweep_project))
    assert set(names) <= set(found)
    assert [found[name].params["params.yaml"]["mix"]["synthetic_ratio"] for name in names] == [0.0, 0.5, 1.25]

    out = sweep_project / "metrics" / "sweep"
    csv_lines = (out / "sweep.csv").read_text().splitlines()
    assert csv_lines[0].startswith("ratio,experiment,rev,") and len(csv_lines) == 4
    table = (out / "sweep.md").read_text()
    assert "probe:score" in table and "probe:constant" not in table  # the table shows what varies
    with Image.open(out / "sweep.png") as plot:
        assert plot.width > 200 and plot.height > 100

    flow_run_id = state.state_details.flow_run_id
    assert [run.name for run in _task_runs(flow_run_id)] == [
        f"{RATIO_PARAM}={r}" for r in ("0", "0.5", "1.25")
    ]
    artifacts = _artifacts(flow_run_id)
    assert {"sweep-results", "sweep-plot"} <= set(artifacts)
    assert [row["ratio"] for row in _table(artifacts["sweep-results"])] == [0.0, 0.5, 1.25]
    assert len(_embedded_pngs(artifacts["sweep-plot"].data)) == 1


@pytest.mark.parametrize("ratios", ["0,-0.25", "0,nan", "0,inf", "0.5,0.5"])
def test_sweep_values_out_of_range_fail_before_any_experiment(sweep_project, ratios, capsys):
    before = set(experiments_by_name(show_experiments(sweep_project)))
    assert flow_cli(["flow", "sweep", "--repo", str(sweep_project), "--ratios", ratios]) == 2
    err = capsys.readouterr().err
    assert "mgm flow sweep: error:" in err and "flow.sweep_ratios" in err
    assert set(experiments_by_name(show_experiments(sweep_project))) == before


def test_sweep_ratio_list_errors_name_the_value(sweep_project, tmp_path):
    with pytest.raises(ParamsError, match=r"ratio -1.0 at position 1: must be finite and >= 0"):
        check_sweep(sweep_project, [0.0, -1.0])
    with pytest.raises(SystemExit):
        flow_cli(["flow", "sweep", "--repo", str(sweep_project), "--ratios", "0,abc"])
    assert check_sweep(sweep_project, [0, 1e-5, 1.25]) == [0.0, 1e-5, 1.25]
    no_mix = flaky_repo(tmp_path / "nomix", fail_first=0, retries=0)
    with pytest.raises(ParamsError, match=r"params.yaml: mix.synthetic_ratio is missing"):
        check_sweep(no_mix, [0.5])


# -- the pieces -------------------------------------------------------------------------------------


def test_stage_order_keeps_file_order_but_puts_upstream_first():
    upstream = {"b": ["c"], "d": ["a"]}
    assert stable_topological_order(["a", "b", "c", "d"], upstream) == ["a", "c", "b", "d"]
    with pytest.raises(DvcError, match="cycle"):
        stable_topological_order(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_a_stage_subset_brings_its_upstream_in_file_order():
    def stage(name, *upstream):
        return Stage(name, "true", "", (), (), (), (), upstream)

    stages = [stage("shard"), stage("train_mt@mt", "shard"), stage("train_gan", "shard"),
              stage("train_mgm", "train_gan"), stage("evaluate", "train_mt@mt", "train_mgm")]  # fmt: skip
    assert [s.name for s in select_stages(stages, ["train_mgm"])] == ["shard", "train_gan", "train_mgm"]
    assert [s.name for s in select_stages(stages, ["train_mt@mt", "shard"])] == ["shard", "train_mt@mt"]
    assert select_stages(stages, []) == stages
    grouped = [stage("train_mt@st", "shard"), stage("train_mt@mt", "shard"), stage("shard")]
    assert [s.name for s in select_stages(grouped, ["train_mt"])] == ["train_mt@st", "train_mt@mt", "shard"]
    with pytest.raises(DvcError, match=r"'nope'.*stages: shard, train_mt@mt"):
        select_stages(stages, ["nope"])


def test_metrics_table_and_flatten(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "st.json").write_text(
        json.dumps({"seg": {"miou": 0.5}, "delta_m": 0.0, "names": ["x"]})
    )
    (tmp_path / "m" / "mt.json").write_text(json.dumps({"seg": {"miou": 0.6}, "delta_m": 0.1}))
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {"a.b": 1, "d": "x"}
    rows = metrics_table(tmp_path, ["m/st.json", "m/mt.json", "m/absent.json"])
    assert rows == [
        {"metric": "seg.miou", "st": 0.5, "mt": 0.6, "absent": ""},
        {"metric": "delta_m", "st": 0.0, "mt": 0.1, "absent": ""},
    ]
    assert artifact_key("metrics", "train_mt@st") == "metrics-train-mt-st"


def test_embedded_images_are_shrunk_and_capped(tmp_path):
    paths = []
    for index in range(3):
        path = tmp_path / f"grid_{index}.png"
        Image.new("RGB", (640, 320), (index * 80, 10, 10)).save(path)
        paths.append(path)
    markdown = images_markdown(tmp_path, paths, "grids", max_side=128, max_bytes=10**6)
    images = _embedded_pngs(markdown)
    assert [image.size for image in images] == [(128, 64)] * 3
    one = len(markdown.split("data:image/png;base64,")[1].split(")")[0]) + len("data:image/png;base64,")
    capped = images_markdown(tmp_path, paths, "grids", max_side=128, max_bytes=one + 10)
    assert len(_embedded_pngs(capped)) == 1 and capped.count("not embedded") == 2


def test_sweep_rows_name_metrics_by_file_and_pick_plots():
    from flows.experiments import Experiment

    def experiment(name, score, constant):
        return Experiment(name, "abcdef123", {}, {"metrics/probe.json": {"score": score, "k": constant}})

    rows = sweep_rows([(1.0, experiment("b", 0.2, 1)), (0.0, experiment("a", 0.1, 1))])
    assert [row["ratio"] for row in rows] == [0.0, 1.0] and rows[0]["rev"] == "abcdef1"
    assert choose_plot_metrics(rows, []) == (["probe:score"], [])
    assert choose_plot_metrics(rows, ["k", "nope"]) == (["probe:k"], ["nope"])


def test_overrides_keep_comments_and_inline_style(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO_ROOT / "params.yaml").read_text())
    changed = write_overrides(tmp_path, ["model.encoder_widths=[8,8,16,16]", "data.seed=0", "mgm.g_lr=null"])
    assert changed == ["model.encoder_widths"]
    text = (tmp_path / "params.yaml").read_text()
    assert "encoder_widths: [8, 8, 16, 16]" in text and "# halfwidth34: the four stage widths" in text
    assert text.replace("[8, 8, 16, 16]", "").count("\n") == (REPO_ROOT / "params.yaml").read_text().count(
        "\n"
    )


def test_the_library_and_stage_commands_never_import_prefect_or_dvc():
    code = (
        "import importlib, pkgutil, sys, pipeline, stages.cli\n"
        "for module in pkgutil.walk_packages(pipeline.__path__, 'pipeline.'):\n"
        "    importlib.import_module(module.name)\n"
        "for name in ('shard', 'preview'):\n"
        "    importlib.import_module('stages.' + name)\n"
        "try:\n"
        "    stages.cli.main(['shard', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'dvc'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
