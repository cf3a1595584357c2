"""The memory a healed run needed survives `prefect deploy`, on a real Prefect server (prefect_test_harness).

The drill deployment of prefect.ecs.yaml is applied with the real `prefect deploy` on an ECS pool made from
admin.ecs's template; the healer's own `remember_memory` records a size that worked; a redeploy sets the
job variables back to the file's, and `apply_remembered_memory` (what the deploy path calls next) raises
the deployment again, only upward and only on the pool the size was learned on. Before that, the healer
reads an ECS crash as prefect-aws's own observer reports it (no AWS: its handler is given the event).
"""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolCreate
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.exceptions import ObjectAlreadyExists
from prefect.logging.handlers import APILogHandler
from prefect.settings import PREFECT_API_URL
from prefect.states import Running
from prefect.variables import Variable
from prefect_aws.observers.ecs import mark_runs_as_crashed

from admin import ecs
from admin.remembered_memory import Applied, apply_remembered_memory
from flows import heal_crashed_run
from flows.heal_crashed_run import remember_memory
from lakeops.datasets import names
from lakeops.healing import oom, sizes

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
DRILL = names.deployment(names.DRILL_FLOW, names.DRILL)  # memory-drill/capacity-drill
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lakeops:0123456789ab"


def deploy(home: Path) -> None:
    """`prefect deploy` of the drill from prefect.ecs.yaml, as an operator runs it."""
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "LAKEOPS_IMAGE": IMAGE,
        "LAKEOPS_CODE_VERSION": "git:0123456789ab",
    }
    command = ["prefect", "--no-prompt", "deploy", "--prefect-file", ecs.DEPLOYMENT_FILE, "--name", names.DRILL]
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def job_variables() -> dict[str, Any]:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(DRILL).job_variables or {}


def set_job_variables(**changed: Any) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DRILL)
        variables = {**(deployment.job_variables or {}), **changed}
        client.update_deployment(deployment.id, DeploymentUpdate(job_variables=variables))


def remember(size: sizes.Size) -> sizes.Size | None:
    """What the healer does once a re-run at `size` completed (its task's own body)."""
    with get_client(sync_client=True) as client:
        return remember_memory.fn(client.read_deployment_by_name(DRILL).id, size)


@pytest.fixture
def drill_on_ecs(prefect_server: None, tmp_path: Path) -> Iterator[Path]:
    """The ECS pool and the drill deployed from prefect.ecs.yaml; no remembered sizes before or after."""
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(
                WorkPoolCreate(name=ecs.ECS_WORK_POOL, type="ecs", base_job_template=ecs.pool_template())
            )
        except ObjectAlreadyExists:
            pass

    def forget() -> None:
        with get_client(sync_client=True) as client:
            for variable in client.read_variables():
                if oom.REMEMBERED_TAG in variable.tags:
                    client.delete_variable_by_name(variable.name)

    forget()
    deploy(tmp_path / "prefect-home")
    yield tmp_path / "prefect-home"
    forget()


def test_the_size_a_healed_run_needed_is_given_back_after_a_redeploy(drill_on_ecs: Path) -> None:
    declared = job_variables()
    assert (declared["cpu"], declared["memory"], declared["image"]) == (256, 512, IMAGE)

    assert remember(sizes.Size(4096, 512)) == sizes.Size(4096, 512)  # a chain 512 -> ... -> 4096 MB completed
    assert remember(sizes.Size(2048, 256)) is None  # a smaller one completing later changes nothing
    assert (job_variables()["cpu"], job_variables()["memory"]) == (512, 4096)
    stored = Variable.get(oom.memory_variable(ecs.ECS_WORK_POOL, DRILL))
    assert stored == {"deployment": DRILL, "work_pool": ecs.ECS_WORK_POOL, "memory": 4096, "cpu": 512}

    deploy(drill_on_ecs)
    assert job_variables() == declared  # what `prefect deploy` does: the file's job variables again

    applied = apply_remembered_memory()

    assert applied == [Applied(DRILL, ecs.ECS_WORK_POOL, sizes.Size(4096, 512))]
    assert job_variables() == {**declared, "cpu": 512, "memory": 4096}  # image and env kept
    assert apply_remembered_memory() == []  # applied once, nothing left to raise


def test_a_remembered_size_never_lowers_a_deployment_and_applies_only_on_its_own_pool(drill_on_ecs: Path) -> None:
    assert remember(sizes.Size(4096, 512)) == sizes.Size(4096, 512)
    set_job_variables(cpu=1024, memory=8192)  # a larger size chosen since, by a human
    other_pool = oom.Remembered(DRILL, "lakeops-local", sizes.Size(16384))
    Variable.set(other_pool.variable, other_pool.value(), tags=[oom.REMEMBERED_TAG])
    Variable.set("lakeops-memory--edited-by-hand", "16384", tags=[oom.REMEMBERED_TAG])

    assert apply_remembered_memory() == []
    assert (job_variables()["cpu"], job_variables()["memory"]) == (1024, 8192)

    set_job_variables(cpu=2048, memory=4096)  # more cpu, the same memory: what worked needs no more
    assert apply_remembered_memory() == []
    set_job_variables(cpu=2048, memory=2048)  # not a Fargate size: raised to 4096 MB, keeping its 2048 cpu
    assert apply_remembered_memory() == [Applied(DRILL, ecs.ECS_WORK_POOL, sizes.Size(4096, 2048))]


def stopped_task_event(flow_run_id: uuid.UUID) -> dict[str, Any]:
    """The EventBridge `ECS Task State Change` of a Fargate task whose container ECS killed over its memory."""
    arn = "arn:aws:ecs:eu-west-1:123456789012:task/lakeops/0123456789abcdef0123456789abcdef"
    container = {"name": "prefect", "exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}
    detail = {
        "taskArn": arn,
        "lastStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [container],
    }
    return {"id": str(uuid.uuid4()), "detail": detail, "tags": {"prefect.io/flow-run-id": str(flow_run_id)}}


def test_the_healer_reads_an_ecs_out_of_memory_stop_as_prefect_aws_reports_it(drill_on_ecs: Path) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DRILL)
        run = client.create_flow_run_from_deployment(deployment.id, parameters={"params": {"megabytes": 700}})
        client.set_flow_run_state(run.id, Running(), force=True)  # it started (so no CloudWatch logs are fetched)
    event = stopped_task_event(run.id)
    asyncio.run(mark_runs_as_crashed(event, event["tags"]))  # prefect-aws's observer: Crashed, and its diagnosis
    APILogHandler().flush()

    deadline = time.monotonic() + 30
    crashed = heal_crashed_run.read_crash.fn(run.id)
    while not crashed.crash.evidence and time.monotonic() < deadline:
        time.sleep(0.5)
        crashed = heal_crashed_run.read_crash.fn(run.id)

    assert crashed.is_crashed and crashed.crash.message == f"{oom.ECS_CRASH}: ['prefect']"  # no exit code in it
    assert crashed.crash.exit_code == 137  # from the observer's line on the run's log
    assert (crashed.crash.cpu, crashed.crash.memory_mb, crashed.crash.fargate) == (256, 512, True)
    decision = heal_crashed_run.decide(crashed)
    assert isinstance(decision, oom.Rerun) and decision.size == sizes.Size(1024, 256)
    rerun_id = heal_crashed_run.start_rerun.fn(crashed, decision)
    with get_client(sync_client=True) as client:
        rerun = client.read_flow_run(rerun_id)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
    assert rerun.job_variables == {"memory": 1024, "cpu": 256}
    assert any(log.name == oom.ECS_OBSERVER_LOGGER and "exited with code 137" in log.message for log in logs)
