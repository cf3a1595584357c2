"""Heal a crashed run: out of memory, re-run it with its memory doubled, up to the cap; lost, re-run it once.

Started by the `lakeops healer: crashed runs` automation on every Crashed run of a lakeops deployment
(an automation's own job variables are not templated, so doubling needs this flow). The out-of-memory
decisions are lakeops.healing's; this flow reads the crashed run, starts the re-run (one per crash: an
idempotency key), waits for it and, when it completes, remembers the size that worked on the deployment
and in a Prefect variable that outlives a redeploy. At the cap it alerts the owner and posts
`lakeops.heal.gave-up` instead. On an ECS pool the exit code is read from what prefect-aws's observer
logged on the run, and on Fargate memory moves between Fargate's task sizes (cpu too when it must).

A lost run is one the `lakeops healer: silent runs` automation marked Crashed because its heartbeats
stopped (its process or its worker was killed): it has no exit code to read, and is re-run once as it
was, on whichever worker is alive; every build replaces its window, so a second run is harmless. A re-run
that is lost again goes to a human: twice in a row points at the machine, or at a run that kills it.
"""

import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from prefect import flow, get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel
from prefect.client.schemas.sorting import LogSort
from prefect.events import Event
from prefect.runtime import flow_run
from prefect.states import Completed
from prefect.utilities.urls import url_for
from pydantic import BaseModel, Field

from flows import events
from flows.alerts import alert_on_failure, send
from flows.common import io_task
from flows.events import post_confirmed
from flows.memory_sizes import raise_deployment
from lakeops.datasets.names import HEALER_FLOW
from lakeops.healing import oom, sizes
from lakeops.healing.lost import Restart, decide_lost, was_lost
from lakeops.healing.oom import GiveUp, NotOurs
from lakeops.readiness.alerts import Alert


class HealParams(BaseModel):
    flow_run_id: str = Field(description="The crashed flow run: its id, or the event's `prefect.flow-run.<id>`.")
    alert_block: str = Field(
        default="custom-webhook/lakeops-alerts", description="Notification block that gets the give-up alert."
    )
    wait_seconds: float = Field(
        default=3600,
        ge=0,
        le=86400,
        description="How long to wait for the re-run, to remember the memory that worked (0: start it and leave).",
    )


@dataclass(frozen=True)
class Crashed:
    """The crashed run in plain fields (a FlowRun cannot be a task argument), and what the healer knows of it."""

    run_id: UUID
    run_name: str
    state: str
    is_crashed: bool
    deployment_id: UUID | None
    deployment_name: str
    parameters: dict[str, Any]
    job_variables: dict[str, Any]
    work_queue_name: str | None
    crash: oom.Crash


@io_task
def read_crash(run_id: UUID) -> Crashed:
    """The crashed run, its deployment, and the size and cap it ran with (run, then deployment, then pool)."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        deployment = client.read_deployment(run.deployment_id) if run.deployment_id else None
        pool = client.read_work_pool(run.work_pool_name) if run.work_pool_name else None
        flow_name = client.read_flow(run.flow_id).name
        evidence = _observer_lines(client, run.id) if pool and pool.type == "ecs" else ()
    own = run.job_variables or {}
    ran = oom.in_effect(
        pool.base_job_template if pool else {}, own, (deployment.job_variables or {}) if deployment else {}
    )
    state = run.state
    crash = oom.Crash(
        str(run.id),
        state.message if state else None,
        ran.get("memory"),
        ran.get("memory_cap") or oom.DEFAULT_CAP_MB,
        frozenset(run.tags),
        cpu=ran.get("cpu"),
        fargate=sizes.on_fargate(pool.type if pool else None, ran.get("launch_type")),
        evidence=evidence,
        started=run.start_time is not None,
    )
    return Crashed(
        run.id,
        run.name,
        state.name if state else "unknown",
        bool(state and state.is_crashed()),
        run.deployment_id,
        f"{flow_name}/{deployment.name if deployment else '-'}",
        run.parameters,
        own,
        run.work_queue_name,
        crash,
    )


def _observer_lines(client: SyncPrefectClient, run_id: UUID) -> tuple[str, ...]:
    """What prefect-aws's ECS observer logged on the run when its task stopped: each container's exit code."""
    only = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]), level=LogFilterLevel(ge_=logging.WARNING))
    logs = client.read_logs(only, limit=200, sort=LogSort.TIMESTAMP_DESC)  # the newest: the task stopped last
    return tuple(log.message for log in logs if log.name == oom.ECS_OBSERVER_LOGGER)


def decide(crashed: Crashed) -> oom.Rerun | Restart | GiveUp | NotOurs:
    """What to do with the crashed run: lost runs and out-of-memory kills are healed, nothing else."""
    if not crashed.is_crashed or crashed.deployment_id is None:
        return NotOurs(f"{crashed.run_name} is {crashed.state}, run by deployment {crashed.deployment_id}")
    return decide_lost(crashed.crash) if was_lost(crashed.crash) else oom.decide(crashed.crash)


@io_task
def start_rerun(crashed: Crashed, rerun: oom.Rerun | Restart) -> UUID:
    """The re-run: same deployment, parameters and queue (doubled memory after OOM); the same one for a second call."""
    memory = rerun.size.job_variables() if isinstance(rerun, oom.Rerun) else {}
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            crashed.deployment_id,
            parameters=crashed.parameters,
            tags=sorted(rerun.tags),
            idempotency_key=rerun.idempotency_key,
            work_queue_name=crashed.work_queue_name,
            job_variables={**crashed.job_variables, **memory},
        )
    return run.id


@io_task
def wait_for(run_id: UUID, timeout: float) -> tuple[str, str, str]:
    """The run's name, state name and message once it is final, or as they are after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        while not (run.state and run.state.is_final()) and time.monotonic() < deadline:
            time.sleep(2)
            run = client.read_flow_run(run_id)
    return run.name, run.state.name if run.state else "unknown", (run.state.message or "") if run.state else ""


@io_task
def remember_memory(deployment_id: UUID, worked: sizes.Size) -> sizes.Size | None:
    """Raise the deployment to the size that worked (never lower) and remember it past a redeploy; the new size."""
    with get_client(sync_client=True) as client:
        return raise_deployment(client, deployment_id, worked, remember=True)


@io_task
def notify(block: str, subject: str, body: str) -> None:
    """Deliver through the notification block; HTTP 5xx and connection errors are retried."""
    send(Alert(subject, body), block)


@io_task
def already_gave_up(run_id: UUID) -> bool:
    """Whether a healer already gave up on this crash (so a second one does not alert twice)."""
    about = {"event": {"name": [oom.GAVE_UP_EVENT]}, "resource": {"id": [f"prefect.flow-run.{run_id}"]}}
    return bool(events.find(about, limit=1))


@io_task
def post_gave_up(crashed: Crashed, give_up: GiveUp) -> None:
    """`lakeops.heal.gave-up` about the crashed run, confirmed by the server (emit_event is fire-and-forget)."""
    crash = crashed.crash
    related = [
        {
            "prefect.resource.id": f"prefect.deployment.{crashed.deployment_id}",
            "prefect.resource.role": "deployment",
            "prefect.resource.name": crashed.deployment_name,
        }
    ]
    if flow_run.get_id():
        healer = f"prefect.flow-run.{flow_run.get_id()}"
        related.append({"prefect.resource.id": healer, "prefect.resource.role": "healer"})
    event = Event(
        id=uuid5(NAMESPACE_URL, f"{oom.GAVE_UP_EVENT}/{crashed.run_id}"),  # stored once per crash
        event=oom.GAVE_UP_EVENT,
        resource={
            "prefect.resource.id": f"prefect.flow-run.{crashed.run_id}",
            "prefect.resource.name": crashed.run_name,
        },
        related=related,
        payload={
            "deployment": crashed.deployment_name,
            "flow_run_id": str(crashed.run_id),
            "root": crash.root,
            "attempt": crash.attempt,
            "memory_mb": crash.memory_mb,
            "cap_mb": crash.cap_mb,
            "exit_code": crash.exit_code,
            "reason": give_up.reason,
            "classification": give_up.classification,
        },
    )
    post_confirmed(event)


@flow(name=HEALER_FLOW, on_failure=[alert_on_failure()])
def heal_crashed_run(params: HealParams):  # noqa: ANN201 - returns a state
    """Re-run an out-of-memory crash with double the memory (at the cap alert and stop), or a lost run once."""
    logger = get_run_logger()
    crashed = read_crash(UUID(params.flow_run_id.removeprefix("prefect.flow-run.")))
    decision = decide(crashed)
    if isinstance(decision, NotOurs):
        logger.info(
            "%s (%s) is neither lost nor an out-of-memory crash to heal: %s",
            crashed.run_name,
            crashed.deployment_name,
            decision.reason,
        )
        return Completed(name="NotOurs", message=decision.reason)
    if isinstance(decision, GiveUp):
        return give_up(crashed, decision, params.alert_block)
    rerun = start_rerun(crashed, decision)
    what = _rerun_described(crashed, decision)
    logger.info("%s (%s) %s: re-run %s", crashed.run_name, crashed.deployment_name, what, rerun)
    if params.wait_seconds == 0:
        return Completed(name="Rerun", message=f"re-run {rerun}: {what}")
    name, state, message = wait_for(rerun, params.wait_seconds)
    if state != "Completed":
        return Completed(name="RerunNotCompleted", message=f"re-run {name} ({rerun}) is {state}: {message}")
    if isinstance(decision, Restart):
        logger.info("re-run %s of the lost run %s completed", name, crashed.run_name)
        return Completed(name="Healed", message=f"re-run {rerun} of the lost run {crashed.run_id} completed")
    remembered = remember_memory(crashed.deployment_id, decision.size)
    how = f"{crashed.deployment_name} now runs with {remembered}" if remembered else "its memory was already higher"
    logger.info("re-run %s completed with %s; %s", name, decision.size, how)
    return Completed(name="Healed", message=f"re-run {rerun} completed with {decision.size}; {how}")


def _rerun_described(crashed: Crashed, decision: oom.Rerun | Restart) -> str:
    crash = crashed.crash
    if isinstance(decision, Restart):
        return f"was lost (no heartbeat: its process or worker died), re-run as it was (attempt {crash.attempt + 1})"
    return (
        f"ran out of memory at {crash.memory_mb} MB, re-run with {decision.size} "
        f"(attempt {crash.attempt + 1}, cap {crash.cap_mb} MB)"
    )


def give_up(crashed: Crashed, decision: GiveUp, alert_block: str):  # noqa: ANN201 - returns a state
    """Alert the owner once and record it; start no run."""
    if already_gave_up(crashed.run_id):
        return Completed(name="AlreadyGaveUp", message=f"a healer already gave up on {crashed.run_id}")
    alert = lost_alert if was_lost(crashed.crash) else oom.gave_up_alert
    subject, body = alert(
        crashed.deployment_name,
        crashed.run_name,
        str(crashed.run_id),
        crashed.crash,
        decision,
        url_for("flow-run", crashed.run_id),
    )
    notify(alert_block, subject, body)
    post_gave_up(crashed, decision)
    get_run_logger().warning("%s\n%s", subject, body)
    return Completed(name="GaveUp", message=subject)


def lost_alert(
    deployment: str, run_name: str, run_id: str, crash: oom.Crash, give_up: GiveUp, run_url: str | None = None
) -> tuple[str, str]:
    """The owner's alert for a run lost twice in a row: what was seen, what was tried, what to look at."""
    subject = f"[lakeops] {deployment} lost twice in a row: {run_name} ({give_up.classification})"
    lines = [
        f"Deployment {deployment}, flow run {run_name} ({run_id}) stopped sending heartbeats and was marked "
        f"Crashed: {crash.message}",
        f"It re-runs a run that was lost the same way (first run {crash.root}, re-runs in this chain: "
        f"{crash.attempt}). Not re-run again: {give_up.reason}.",
        "Look at the worker's log and the host (was the worker killed, did the machine run out of memory?) "
        f"before running it again: prefect deployment run '{deployment}' with the same parameters.",
    ]
    if run_url:
        lines.append(f"Run: {run_url}")
    return subject, "\n".join(lines)
