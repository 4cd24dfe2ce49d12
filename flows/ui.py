"""``mgm ui``: a local Prefect server with its UI, bound to 127.0.0.1, offline, stopped by Ctrl-C.

The server is ``prefect server start`` in a child process (its own process group), with
``PREFECT_HOME`` defaulting to ``<repo>/.prefect`` and telemetry off; its log goes to
``$PREFECT_HOME/server.log``. Flows run against it when ``PREFECT_API_URL`` is exported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from flows.env import offline_env
from pipeline.errors import PipelineError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


class ServerError(PipelineError):
    """The Prefect server could not start (busy port, failed start, no health answer)."""


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` (bound the way uvicorn binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def api_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/api"


def server_env(
    repo: str | Path, host: str, port: int, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment of the server: offline settings, ``PREFECT_HOME``, the UI pointed at this API."""
    env = dict(os.environ if base is None else base)
    offline_env(repo, env)
    url = api_url(host, port)
    env.update(
        PREFECT_UI_API_URL=url,
        PREFECT_API_URL=url,
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    return env


def server_command(host: str, port: int) -> list[str]:
    """``prefect server start`` from this interpreter, bound to ``host:port``, analytics off."""
    return [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        host,
        "--port",
        str(port),
        "--analytics-off",
        "--no-background",
    ]


def start_server(repo: str | Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> subprocess.Popen:
    """Start the server in its own process group, logging to ``$PREFECT_HOME/server.log``."""
    if not port_is_free(host, port):
        raise ServerError(
            f"port {port} on {host} is already in use (another Prefect server or program listens there); "
            "choose another with --port N, or --port 0 for a free one"
        )
    env = server_env(repo, host, port)
    home = Path(env["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with (home / "server.log").open("ab") as log:
        return subprocess.Popen(
            server_command(host, port),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_healthy(url: str, process: subprocess.Popen | None = None, timeout: float = 120) -> None:
    """Poll ``<url>/health`` until it answers ``true``; :class:`ServerError` on exit or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerError(f"the Prefect server exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200 and response.read().strip() == b"true":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise ServerError(f"the Prefect server at {url} did not answer /health within {timeout:.0f} s")


def api_reachable(url: str, timeout: float = 5) -> bool:
    """Whether anything answers HTTP at ``<url>/health`` (an error status still counts as an answer)."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return False


def stop_server(process: subprocess.Popen, grace: float = 20) -> int:
    """SIGINT the server's process group (a clean uvicorn shutdown), SIGKILL it after ``grace`` seconds."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
    return process.returncode


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the group the server leads (start_new_session=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(
    repo: str | Path = ".", host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, timeout: float = 120
) -> int:
    """Run the server until Ctrl-C (or SIGTERM); print the UI URL and how to run flows against it."""
    port = free_port(host) if port == 0 else port
    process = start_server(repo, host, port)
    log = Path(server_env(repo, host, port)["PREFECT_HOME"]) / "server.log"
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            wait_until_healthy(api_url(host, port), process, timeout)
        except ServerError as err:
            raise ServerError(f"{err}; see {log}") from None
        print(f"Prefect UI: http://{host}:{port}  (server pid {process.pid}, log {log})")
        print(f"Run flows against it from another shell:\n  export PREFECT_API_URL={api_url(host, port)}")
        print("  mgm flow run\nPress Ctrl-C to stop the server.", flush=True)
        process.wait()
        print(f"the Prefect server exited with code {process.returncode}; see {log}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        code = stop_server(process)
        print(f"\nstopped the Prefect server (exit code {code})", flush=True)
        return 0
    finally:
        stop_server(process)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
