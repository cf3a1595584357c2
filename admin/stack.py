"""A local Prefect server and worker (warm or process), started in the background and stopped again."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lakeops.datasets.names import WARM_WORKER_TYPE
from lakeops.healing.usage import USAGE_DIR_ENV
from workers.pool import WarmPoolSettings

PROJECT_DIR = Path(__file__).resolve().parent.parent
WORK_POOL = "lakeops-local"
DEFAULT_API_URL = "http://127.0.0.1:4200/api"
WORKER_ENV = "LAKEOPS_WORKER"
# LAKEOPS_WORKER -> the local pool's type: Prefect's process worker, or lakeops's warm one (workers/warm.py).
WORKER_TYPES = {"process": "process", "warm": WARM_WORKER_TYPE}


def worker_type() -> str:
    """The local pool's worker type, from LAKEOPS_WORKER (`warm`, the default, or `process`)."""
    chosen = os.environ.get(WORKER_ENV, "warm").strip() or "warm"
    if chosen not in WORKER_TYPES:
        raise ValueError(f"{WORKER_ENV}={chosen!r}: choose one of {', '.join(WORKER_TYPES)}")
    return WORKER_TYPES[chosen]


def reachable(api_url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect API answers its health check at `api_url`."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStack:
    """Processes this stack started (and only those are stopped)."""

    api_url: str
    home: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for Prefect commands and flow runs against this stack.

        LAKEOPS_USAGE_DIR (default: <LAKEOPS_HOME>/usage) is where the memory supervisor records what
        each flow run used, which the platform metrics price.
        """
        env = {
            **os.environ,
            # The pool starts flow runs as `python -m lakeops.memlimit ...`: `python` must be this interpreter.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "LAKEOPS_PROJECT_DIR": str(PROJECT_DIR),
            "LAKEOPS_WORK_POOL": WORK_POOL,
            **extra,
        }
        home = Path(env.get("LAKEOPS_HOME", ".lakeops")).expanduser().resolve()
        env.setdefault(USAGE_DIR_ENV, str(home / "usage"))
        return env

    def start_server(
        self, port: int, ui: bool = True, database_url: str | None = None, timeout: float = 180
    ) -> subprocess.Popen[bytes]:
        """Start `prefect server start` (on SQLite under `home` unless `database_url`); wait until healthy.

        Started again with the same `home` (or `database_url`) after a crash, it serves the same database.
        """
        prefect_home = self.home / "prefect"
        prefect_home.mkdir(parents=True, exist_ok=True)
        env = self.env(
            PREFECT_HOME=str(prefect_home),
            PREFECT_UI_ENABLED=str(ui).lower(),
            PREFECT_SERVER_API_HOST="127.0.0.1",
            PREFECT_SERVER_API_PORT=str(port),
        )
        env.pop("PREFECT_API_URL")
        if database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
        server = self.spawn(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env,
            self.home / "server.log",
        )
        deadline = time.monotonic() + timeout
        while not reachable(self.api_url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Prefect server did not start; see {self.home / 'server.log'}")
            time.sleep(0.5)
        return server

    def start_worker(self, poll_seconds: float = 0.5, **extra_env: str) -> subprocess.Popen[bytes]:
        """Start a worker of the pool's type (LAKEOPS_WORKER) on the lakeops pool that polls every `poll_seconds`."""
        env = self.env(
            PREFECT_WORKER_QUERY_SECONDS=str(poll_seconds),
            PREFECT_WORKER_PREFETCH_SECONDS="0",
            **extra_env,
        )
        return self.spawn(
            [
                sys.executable,
                "-m",
                "prefect",
                "worker",
                "start",
                "--pool",
                WORK_POOL,
                "--type",
                worker_type(),
                "--name",
                f"lakeops-{os.getpid()}",
            ],
            env,
            self.home / "worker.log",
        )

    def wait_until_warm(self, timeout: float = 300) -> None:
        """On the warm worker: wait until its pool is full and every idle interpreter is ready (its log says so)."""
        if worker_type() != WARM_WORKER_TYPE:
            return
        size = WarmPoolSettings().interpreters
        log, deadline = self.home / "worker.log", time.monotonic() + timeout
        while f"{size} of {size} idle ready" not in (log.read_text(errors="replace") if log.exists() else ""):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the warm worker's {size} interpreters not ready in {timeout:.0f} s; see {log}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop what this stack started, newest first."""
        for proc in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.started):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.started.clear()

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a started process's whole group, as a crash would: a worker dies with the flow runs it started."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.started.remove(proc)

    def spawn(self, cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start a background process in its own session, logging to `log`; stop() ends it."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                env=env,
                cwd=PROJECT_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(proc)
        return proc


def ensure_server(home: Path, api_url: str | None = None) -> LocalStack:
    """Use the server at `api_url` (or PREFECT_API_URL, or :4200) if reachable; else start one."""
    url = api_url or os.environ.get("PREFECT_API_URL") or DEFAULT_API_URL
    stack = LocalStack(api_url=url, home=home)
    if not reachable(url):
        port = 4200 if url == DEFAULT_API_URL else free_port()
        stack.api_url = f"http://127.0.0.1:{port}/api"
        stack.start_server(port)
    return stack
