"""Out-of-memory healing on a real server: a kernel OOM kill, the healer automation, a doubled re-run, the cap."""

import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from admin import runs
from admin.automations import HEALER_DEPLOYMENT, ensure_healer_automation
from admin.setup import MEMORY_LIMITED_COMMAND, ensure_work_pool, lakeops_pool
from admin.stack import WORK_POOL, worker_type
from lakeops.datasets import names
from lakeops.healing import oom

pytestmark = pytest.mark.e2e
DRILL = names.deployment(names.DRILL_FLOW, names.DRILL)  # memory-drill/capacity-drill
# A drill flow run holds about 90 MB before it allocates (measured: the cgroup's peak with 16 MB held).
FITS_IN_400_NOT_200 = 240
NEVER_FITS_512 = 700


def drill(megabytes: int, **job_variables: int) -> FlowRun:
    return run_deployment(
        DRILL,
        parameters={"params": {"megabytes": megabytes}},
        job_variables=job_variables,
        timeout=180,
        poll_interval=0.5,
    )


def healer_of(run: FlowRun, timeout: float = 120) -> FlowRun:
    def matches(healer: FlowRun) -> bool:
        return healer.parameters.get("params", {}).get("flow_run_id") == f"prefect.flow-run.{run.id}"

    return runs.wait_for_run(HEALER_DEPLOYMENT, matches, timeout)


def drill_runs() -> list[FlowRun]:
    only_drills = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[runs.deployment_id(DRILL)]))
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=only_drills, limit=200)


def reruns_of(run: FlowRun) -> list[FlowRun]:
    return [r for r in drill_runs() if oom.HEALS_TAG + str(run.id) in r.tags]


def drill_memory() -> int | None:
    with get_client(sync_client=True) as client:
        return (client.read_deployment_by_name(DRILL).job_variables or {}).get("memory")


@pytest.fixture
def fresh_drill_deployment():  # noqa: ANN201
    """The drill deployment with no remembered memory before and after the test."""

    def reset() -> None:
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name(DRILL)
            variables = {k: v for k, v in (deployment.job_variables or {}).items() if k != "memory"}
            client.update_deployment(deployment.id, DeploymentUpdate(job_variables=variables))
            remembered = {"variables": {"tags": {"all_": [oom.REMEMBERED_TAG]}}}
            for variable in client.request("POST", "/variables/filter", json=remembered).json():
                client.delete_variable_by_name(variable["name"])  # what a later deploy would give back

    reset()
    yield
    reset()


def test_an_oom_kill_is_rerun_with_double_the_memory_once_and_the_size_that_worked_is_remembered(
    e2e, fresh_drill_deployment
) -> None:
    run = drill(FITS_IN_400_NOT_200, memory=200)

    assert run.state.is_crashed(), run.state
    assert "status code: 137" in run.state.message  # a real kernel OOM kill, through lakeops.memlimit
    healer = healer_of(run)
    assert healer.state.name == "Healed", healer.state.message
    assert healer.created_by.type == "AUTOMATION"
    (rerun,) = reruns_of(run)
    with get_client(sync_client=True) as client:
        rerun = client.read_flow_run(rerun.id)
    assert rerun.state.is_completed(), rerun.state.message
    assert rerun.job_variables["memory"] == 400
    assert rerun.parameters == run.parameters
    assert {f"{oom.ROOT_TAG}{run.id}", f"{oom.ATTEMPT_TAG}1"} <= set(rerun.tags)
    assert drill_memory() == 400
    crashed_at = run.state.timestamp.timestamp()
    print(
        f"\ncrash -> healer created {healer.created.timestamp() - crashed_at:.1f} s, -> re-run created "
        f"{rerun.created.timestamp() - crashed_at:.1f} s, -> re-run completed "
        f"{rerun.state.timestamp.timestamp() - crashed_at:.1f} s"
    )

    # The automation firing twice for the crash: the same re-run comes back, no second one starts.
    again = run_deployment(
        HEALER_DEPLOYMENT,
        parameters={"params": {"flow_run_id": str(run.id), "wait_seconds": 0}},
        timeout=120,
        poll_interval=0.5,
    )
    assert again.state.name == "Rerun", again.state.message
    assert str(rerun.id) in again.state.message
    assert [r.id for r in reruns_of(run)] == [rerun.id]
    assert reruns_of(rerun) == []  # a completed re-run starts nothing


def test_a_run_that_needs_more_than_the_cap_is_rerun_at_the_cap_then_given_up_with_one_alert(
    e2e, fresh_drill_deployment
) -> None:
    run = drill(NEVER_FITS_512, memory=256, memory_cap=512)
    assert run.state.is_crashed() and "137" in run.state.message, run.state

    alert = e2e.receiver.wait_for(f"first run {run.id}", timeout=150)
    print(f"\ncrash -> alert at the cap {alert.at - run.state.timestamp.timestamp():.1f} s")

    (rerun,) = reruns_of(run)
    assert rerun.job_variables == {"memory": 512, "memory_cap": 512}
    assert healer_of(run).state.name == "RerunNotCompleted"
    assert healer_of(rerun).state.name == "GaveUp"
    assert "out of memory at the cap (512 MB): data-dependent" in alert.subject
    for part in (DRILL, str(rerun.id), "Memory tried: 512 MB; cap: 512 MB"):
        assert part in alert.body, part

    time.sleep(15)  # long enough for a third run or a second alert to show up, were there one
    assert reruns_of(rerun) == []
    gave_up = {"event": {"name": [oom.GAVE_UP_EVENT]}, "resource": {"id": [f"prefect.flow-run.{rerun.id}"]}}
    with get_client(sync_client=True) as client:  # events are stored a few seconds after the POST
        events = client.request("POST", "/events/filter", json={"filter": gave_up, "limit": 50}).json()["events"]
    assert [e["payload"]["classification"] for e in events] == ["data-dependent"]
    assert len(e2e.receiver.about(f"first run {run.id}")) == 1
    assert drill_memory() is None  # nothing worked, nothing remembered


def test_setup_twice_leaves_one_pool_template_with_the_limit_and_one_healer_automation(e2e) -> None:
    with get_client(sync_client=True) as client:
        before = client.read_work_pool(WORK_POOL).base_job_template
    ensure_work_pool()
    ensure_healer_automation()
    with get_client(sync_client=True) as client:
        after = client.read_work_pool(WORK_POOL).base_job_template
        healers = client.read_automations_by_name("lakeops healer: crashed runs")

    kind = worker_type()
    assert after == before == lakeops_pool(before, kind)
    # The process worker starts runs through the memory supervisor; the warm worker's slots are the supervisor.
    assert after["variables"]["properties"]["command"]["default"] == (
        MEMORY_LIMITED_COMMAND if kind == "process" else None
    )
    assert after["job_configuration"]["env"] == {"LAKEOPS_MEMORY_MB": "{{ memory }}"}
    assert len(healers) == 1
