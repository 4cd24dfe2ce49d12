"""End to end: `mgm ui` runs a real `prefect server start` on a free loopback port; a flow runs against it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows.cli import main as flow_cli
from flows.ui import api_url, free_port, port_is_free, wait_until_healthy
from tests._dvc_repo import project_env
from tests._flow_projects import report_repo

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:dvc.*")]

MGM = [sys.executable, "-c", "import sys; from stages.cli import main; sys.exit(main())"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _start_logged(command: list[str], cwd: Path, env: dict[str, str], out: Path) -> subprocess.Popen:
    """``command`` in a session of its own (so its whole group can be signalled), output to ``out``."""
    with out.open("w") as handle:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _interrupt_then_kill(process: subprocess.Popen, grace: float) -> None:
    """Ctrl-C for ``process`` (its whole group), then SIGKILL if it has not stopped within ``grace``."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mgm ui` on a free port with its own PREFECT_HOME; always stopped, by PID, at teardown."""
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {**project_env(), "PREFECT_HOME": str(root / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    out = root / "mgm-ui.out"
    ui = _start_logged([*MGM, "ui", "--repo", str(root), "--port", str(port)], root, env, out)
    try:
        wait_until_healthy(api_url("127.0.0.1", port), ui, timeout=180)
        deadline = time.monotonic() + 30
        while "server pid" not in _read(out) and time.monotonic() < deadline:
            time.sleep(0.2)
        server_pid = int(re.search(r"server pid (\d+)", _read(out)).group(1))
        yield {"port": port, "url": api_url("127.0.0.1", port), "ui": ui, "pid": server_pid, "out": out}
    finally:
        _interrupt_then_kill(ui, 30)
        match = re.search(r"server pid (\d+)", _read(out))
        if match and _pid_alive(int(match.group(1))):
            os.killpg(int(match.group(1)), signal.SIGKILL)


def test_flow_runs_against_the_server_and_shows_in_its_api(server, tmp_path):
    repo = report_repo(tmp_path / "project")
    env = {**project_env(), "PREFECT_API_URL": server["url"], "PREFECT_HOME": str(tmp_path / "client-home")}
    result = subprocess.run(
        [*MGM, "flow", "run", "--repo", str(repo)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Starting temporary server" not in result.stdout + result.stderr  # used the real server

    with httpx.Client(base_url=server["url"], timeout=30) as api:
        flows = api.post("/flows/filter", json={"flows": {"name": {"any_": ["mgm-pipeline"]}}}).json()
        assert len(flows) == 1
        runs = api.post("/flow_runs/filter", json={"flows": {"id": {"any_": [flows[0]["id"]]}}}).json()
        assert len(runs) == 1 and runs[0]["state_type"] == "COMPLETED"
        run_id = runs[0]["id"]
        tasks = api.post(
            "/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [run_id]}}, "sort": "EXPECTED_START_TIME_ASC"},
        ).json()
        assert [task["name"] for task in tasks] == ["prepare", "report"]
        assert all(task["state_type"] == "COMPLETED" for task in tasks)
        artifacts = api.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
        ).json()
        keys = {artifact["key"] for artifact in artifacts}
        assert {"metrics-report", "grids-report", "stage-durations", "dvc-outputs"} <= keys
        table = next(a for a in artifacts if a["key"] == "metrics-report")["data"]
        assert "task.miou" in str(table) and "0.75" in str(table)
        grids = next(a for a in artifacts if a["key"] == "grids-report")["data"]
        assert "report/grid.png" in grids and "data:image/png;base64," in grids
        logs = api.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}}).json()
        assert "report stage says hello" in "\n".join(log["message"] for log in logs)


def test_serve_registers_both_deployments_and_runs_one_started_through_the_api(server, tmp_path):
    repo = report_repo(tmp_path / "project")
    env = {**project_env(), "PREFECT_API_URL": server["url"], "PREFECT_HOME": str(tmp_path / "client-home")}
    out = tmp_path / "serve.out"
    serving = _start_logged([*MGM, "flow", "serve", "--repo", str(repo)], tmp_path, env, out)
    try:
        with httpx.Client(base_url=server["url"], timeout=30) as api:
            deadline = time.monotonic() + 180
            while True:
                deployments = {d["name"]: d for d in api.post("/deployments/filter", json={}).json()}
                if {"pipeline", "sweep"} <= set(deployments):
                    break
                assert serving.poll() is None and time.monotonic() < deadline, _read(out)
                time.sleep(1)
            pipeline, sweep = deployments["pipeline"], deployments["sweep"]
            assert pipeline["parameters"]["repo"] == str(repo.resolve())
            assert (
                sweep["parameters"]["ratios"] is None
            )  # flow.sweep_ratios as params.yaml has it at run time
            flow_run_id = _create_flow_run(api, pipeline["id"])
            deadline = time.monotonic() + 240
            while True:
                state = api.get(f"/flow_runs/{flow_run_id}").json()["state"]["type"]
                if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                    break
                assert serving.poll() is None and time.monotonic() < deadline, _read(out)
                time.sleep(1)
            assert state == "COMPLETED", _read(out)
        assert (repo / "dvc.lock").is_file() and (repo / "report" / "grid.png").is_file()  # the stage ran
        listed = subprocess.run(
            [str(Path(sys.executable).parent / "prefect"), "deployment", "ls"],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "mgm-pipeline/pipeline" in listed.stdout and "mgm-ratio-sweep/sweep" in listed.stdout
    finally:
        _interrupt_then_kill(serving, 60)


def _create_flow_run(api: httpx.Client, deployment_id: str) -> str:
    """Start a deployment's run through the API; retry the server's transient 5xx answers.

    Under load the local SQLite-backed server can answer 5xx ("database is locked"):
    a real client retries those; anything else fails here with the server's body.
    """
    for _ in range(5):
        answer = api.post(f"/deployments/{deployment_id}/create_flow_run", json={})
        if answer.status_code < 500:
            break
        time.sleep(2)
    assert answer.status_code in (200, 201), f"{answer.status_code}: {answer.text}"
    return answer.json()["id"]


def _wait_for_run(api: httpx.Client, flow_run_id: str, alive: subprocess.Popen, out: Path) -> str:
    deadline = time.monotonic() + 300
    while True:
        state = api.get(f"/flow_runs/{flow_run_id}").json()["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        assert alive.poll() is None and time.monotonic() < deadline, _read(out)
        time.sleep(1)


def test_a_process_work_pool_worker_runs_the_deployed_pipeline(server, tmp_path):
    repo = report_repo(tmp_path / "project")
    env = {
        **project_env(), "PREFECT_API_URL": server["url"], "PREFECT_HOME": str(tmp_path / "client-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }  # fmt: skip
    prefect = str(Path(sys.executable).parent / "prefect")
    created = subprocess.run(
        [prefect, "work-pool", "create", "mgm-local", "--type", "process"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = subprocess.run(
        [*MGM, "flow", "deploy", "--pool", "mgm-local", "--repo", str(repo), "--suffix=-pool"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "mgm-pipeline/pipeline-pool" in deployed.stdout and "prefect worker start" in deployed.stdout
    out = tmp_path / "worker.out"
    worker = _start_logged(
        [prefect, "worker", "start", "--pool", "mgm-local", "--type", "process"], tmp_path, env, out
    )
    try:
        with httpx.Client(base_url=server["url"], timeout=30) as api:
            deployments = {d["name"]: d for d in api.post("/deployments/filter", json={}).json()}
            pipeline = deployments["pipeline-pool"]
            assert pipeline["work_pool_name"] == "mgm-local" and "sweep-pool" in deployments
            assert pipeline["global_concurrency_limit"]["limit"] == 1  # DVC locks the workspace
            flow_run_id = _create_flow_run(api, pipeline["id"])
            assert _wait_for_run(api, flow_run_id, worker, out) == "COMPLETED", _read(out)
        assert (repo / "dvc.lock").is_file()
    finally:
        _interrupt_then_kill(worker, 60)


def test_serve_without_a_server_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    repo = report_repo(tmp_path / "project")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert flow_cli(["flow", "serve", "--repo", str(repo)]) == 2
    err = capsys.readouterr().err
    assert "PREFECT_API_URL is not set" in err and "Start one with `mgm ui`" in err
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    assert flow_cli(["flow", "serve", "--repo", str(repo)]) == 2
    assert f"PREFECT_API_URL={url} does not answer" in capsys.readouterr().err


def test_ui_stops_cleanly_on_ctrl_c(server):
    # runs after the flow test (module order): stop the UI the way a user does, by its PID
    out, ui, pid = server["out"], server["ui"], server["pid"]
    assert f"Prefect UI: http://127.0.0.1:{server['port']}" in _read(out)
    assert f"export PREFECT_API_URL={server['url']}" in _read(out)
    assert _pid_alive(pid)
    ui.send_signal(signal.SIGINT)
    assert ui.wait(timeout=60) == 0
    assert "stopped the Prefect server" in _read(out)
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _pid_alive(pid)
    assert port_is_free("127.0.0.1", server["port"])


def test_ui_on_a_busy_port_says_so(tmp_path, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert flow_cli(["ui", "--repo", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port" in err


def test_flow_run_against_an_unreachable_server_says_so(tmp_path, monkeypatch, capsys):
    repo = report_repo(tmp_path / "project")
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    assert flow_cli(["flow", "run", "--repo", str(repo)]) == 2
    assert f"PREFECT_API_URL={url} does not answer" in capsys.readouterr().err
    assert not (repo / "dvc.lock").exists()
