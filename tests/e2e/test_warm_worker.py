"""The warm worker on a real server: runs start in interpreters warm before the run existed, with Prefect's semantics.

Killed, failed or cancelled runs get Prefect's own states, and each leaves the worker whole for the
next run. The session's worker is the warm one unless LAKEOPS_WORKER=process (then these skip).
"""

import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from admin.stack import worker_type
from lakeops.datasets import names
from workers.pool import WarmPoolSettings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(worker_type() != "lakeops-warm", reason="the session's worker is not the warm one"),
]
DRILL = names.deployment(names.DRILL_FLOW, names.DRILL)
HANDED = re.compile(r"Handed to warm interpreter slot (\d+) \(ready since (\S+), (forked|warmed) in")
DRILL_PROCESS = re.compile(r"allocating \d+ MB in process (\d+)")
POOL_READY = re.compile(r"(\d+) of (\d+) idle ready")


@pytest.fixture
def warm_pool(e2e) -> None:
    """Wait until the worker's pool is full and warm: its last word on the pool, after its last hand-off."""
    log = e2e.stack.home / "worker.log"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        said = list(POOL_READY.finditer(text))
        if said and said[-1].group(1) == said[-1].group(2) and said[-1].start() > text.rfind("Handed to warm"):
            return
        time.sleep(0.5)
    pytest.fail(f"the warm pool did not fill within 180 s (see {log})")


def start_drill(megabytes: int = 1, hold_seconds: float = 0, **job_variables: object) -> FlowRun:
    return run_deployment(
        DRILL,
        parameters={"params": {"megabytes": megabytes, "hold_seconds": hold_seconds}},
        job_variables=job_variables,
        timeout=0,
    )


def wait_for(run: FlowRun, done, timeout: float = 120) -> FlowRun:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            current = client.read_flow_run(run.id)
            if done(current) or time.monotonic() > deadline:
                return current
            time.sleep(0.2)


def final(run: FlowRun, timeout: float = 120) -> FlowRun:
    return wait_for(run, lambda r: r.state is not None and r.state.is_final(), timeout)


def running(run: FlowRun) -> FlowRun:
    """The run once Running, with the worker's pid of its process (the slot) recorded."""
    return wait_for(run, lambda r: r.state is not None and r.state.is_running() and r.infrastructure_pid, 60)


def logs(run: FlowRun) -> list[str]:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    return [log.message for log in found]


def interpreter_of(run: FlowRun) -> int:
    """The pid of the interpreter running `run` (the drill logs it): a copy of the fork server, or the slot's child."""
    found = DRILL_PROCESS.search(logged(run, "in process"))
    assert found, f"the drill {run.name} did not log its process"
    pid = int(found.group(1))
    parent = Path(f"/proc/{_parent(Path(f'/proc/{pid}'))}")
    assert "workers.zygote" in _cmdline(parent) or parent.name == str(run.infrastructure_pid), _cmdline(parent)
    return pid


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def logged(run: FlowRun, needle: str, timeout: float = 30) -> str:
    """The run's logs once one contains `needle` (a flow run's process ships its logs every few seconds)."""
    deadline = time.monotonic() + timeout
    while needle not in (said := " ".join(logs(run))) and time.monotonic() < deadline:
        time.sleep(0.5)
    return said


def handed_to(run: FlowRun) -> list[re.Match[str]]:
    """The worker's "Handed to" line in the run's logs (the worker ships its logs every few seconds)."""
    deadline = time.monotonic() + 30
    while not (found := [m for line in logs(run) if (m := HANDED.search(line))]) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def test_a_run_is_handed_to_an_interpreter_that_was_ready_before_the_run_existed(e2e, warm_pool) -> None:
    run = final(start_drill())

    assert run.state.is_completed(), run.state
    handed = handed_to(run)
    assert len(handed) == 1
    assert datetime.fromisoformat(handed[0].group(2)) < run.created  # warm before the run was created
    assert handed[0].group(3) == ("forked" if WarmPoolSettings().fork else "warmed")
    assert "Finished in state Completed" in logged(run, "Finished in state Completed")  # the engine's own logs


def test_a_run_killed_in_its_warm_interpreter_crashes_with_the_exit_code_and_the_next_run_completes(
    e2e, warm_pool
) -> None:
    run = running(start_drill(hold_seconds=60))
    os.kill(interpreter_of(run), signal.SIGKILL)

    crashed = final(run)
    assert crashed.state.is_crashed(), crashed.state
    assert "status code: -9" in (crashed.state.message or "")
    assert final(start_drill()).state.is_completed()


def test_a_run_that_raises_fails_and_leaves_the_worker_whole_and_its_env_job_variable_reached_it(
    e2e, warm_pool
) -> None:
    # The `env` job variable asks for the address-space fallback: allocating past it raises MemoryError.
    failed = final(start_drill(megabytes=2000, memory=300, env={"LAKEOPS_MEMORY_FALLBACK": "1"}))

    assert failed.state.is_failed(), failed.state
    said = logged(failed, "300 MB for the run over")
    assert "address-space limit (fallback: LAKEOPS_MEMORY_FALLBACK=1)" in said and "300 MB for the run over" in said
    assert final(start_drill()).state.is_completed()


def test_a_cancelled_run_is_cancelled_and_its_interpreter_is_gone(e2e, warm_pool) -> None:
    run = running(start_drill(hold_seconds=60))
    interpreter = interpreter_of(run)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Cancelling())

    cancelled = final(run, timeout=60)
    assert cancelled.state.is_cancelled(), cancelled.state
    deadline = time.monotonic() + 20
    while Path(f"/proc/{interpreter}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{interpreter}").exists()
    assert final(start_drill()).state.is_completed()


def test_the_memory_job_variable_puts_the_run_in_its_own_cgroup(e2e, warm_pool) -> None:
    run = final(start_drill(megabytes=16, memory=300))

    assert run.state.is_completed(), run.state
    said = logged(run, "memory limit: cgroup v")
    assert "memory limit: cgroup v" in said and "300 MB" in said
