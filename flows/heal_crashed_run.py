"""Heal a run that crashed out of memory: re-run it with its memory doubled, up to the cap.

Started by the `lakeops healer: crashed runs` automation on every Crashed run of a lakeops deployment
(an automation's own job variables are not templated, so doubling needs this flow). The decisions are
lakeops.healing's; this flow reads the crashed run, starts the re-run (one per crash: an idempotency
key), waits for it and, when it completes, remembers the size that worked on the deployment. At the cap
it alerts the owner and posts `lakeops.heal.gave-up` instead.
"""

import time
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.events import Event
from prefect.runtime import flow_run
from prefect.states import Completed
from prefect.utilities.urls import url_for
from pydantic import BaseModel, Field

from flows.alerts import alert_on_failure, send
from flows.common import io_task, post_confirmed
from lakeops.datasets.names import HEALER_FLOW
from lakeops.healing import oom
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
    """The crashed run, its deployment, and the memory and cap it ran with (run, then deployment, then pool)."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        deployment = client.read_deployment(run.deployment_id) if run.deployment_id else None
        pool = client.read_work_pool(run.work_pool_name).base_job_template if run.work_pool_name else {}
        flow_name = client.read_flow(run.flow_id).name
    own = run.job_variables or {}
    layers = [own, (deployment.job_variables or {}) if deployment else {}, _pool_defaults(pool)]
    memory = next((layer["memory"] for layer in layers if layer.get("memory") is not None), None)
    cap = next((layer["memory_cap"] for layer in layers if layer.get("memory_cap") is not None), None)
    state = run.state
    crash = oom.Crash(
        str(run.id), state.message if state else None, memory, cap or oom.DEFAULT_CAP_MB, frozenset(run.tags)
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


@io_task
def start_rerun(crashed: Crashed, rerun: oom.Rerun) -> UUID:
    """The re-run: same deployment, parameters and queue, doubled memory; the same one for a second call."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            crashed.deployment_id,
            parameters=crashed.parameters,
            tags=sorted(rerun.tags),
            idempotency_key=rerun.idempotency_key,
            work_queue_name=crashed.work_queue_name,
            job_variables={**crashed.job_variables, "memory": rerun.memory_mb},
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
def remember_memory(deployment_id: UUID, worked_mb: int) -> int | None:
    """Raise the deployment's `memory` to the size that worked (never lower it); the new value, or None."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        pool = client.read_work_pool(deployment.work_pool_name).base_job_template if deployment.work_pool_name else {}
        variables = deployment.job_variables or {}
        new = oom.remember(variables.get("memory", _pool_defaults(pool).get("memory")), worked_mb)
        if new is not None:
            client.update_deployment(deployment_id, DeploymentUpdate(job_variables={**variables, "memory": new}))
    return new


@io_task
def notify(block: str, subject: str, body: str) -> None:
    """Deliver through the notification block; HTTP 5xx and connection errors are retried."""
    send(Alert(subject, body), block)


@io_task
def already_gave_up(run_id: UUID) -> bool:
    """Whether a healer already gave up on this crash (so a second one does not alert twice)."""
    body = {
        "filter": {"event": {"name": [oom.GAVE_UP_EVENT]}, "resource": {"id": [f"prefect.flow-run.{run_id}"]}},
        "limit": 1,
    }
    with get_client(sync_client=True) as client:
        return bool(client.request("POST", "/events/filter", json=body).json()["events"])


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
    """Re-run an out-of-memory crash with double the memory; at the cap alert and stop; anything else: leave it."""
    logger = get_run_logger()
    crashed = read_crash(UUID(params.flow_run_id.removeprefix("prefect.flow-run.")))
    crash = crashed.crash
    decision = oom.decide(crash)
    if not crashed.is_crashed or crashed.deployment_id is None:
        decision = NotOurs(f"{crashed.run_name} is {crashed.state}, run by deployment {crashed.deployment_id}")
    if isinstance(decision, NotOurs):
        logger.info(
            "%s (%s) is not an out-of-memory crash to heal: %s",
            crashed.run_name,
            crashed.deployment_name,
            decision.reason,
        )
        return Completed(name="NotOurs", message=decision.reason)
    if isinstance(decision, GiveUp):
        return give_up(crashed, decision, params.alert_block)
    rerun = start_rerun(crashed, decision)
    logger.info(
        "%s (%s) ran out of memory at %s MB: re-run %s with %s MB (attempt %s, cap %s MB)",
        crashed.run_name,
        crashed.deployment_name,
        crash.memory_mb,
        rerun,
        decision.memory_mb,
        crash.attempt + 1,
        crash.cap_mb,
    )
    if params.wait_seconds == 0:
        return Completed(name="Rerun", message=f"re-run {rerun} with {decision.memory_mb} MB")
    name, state, message = wait_for(rerun, params.wait_seconds)
    if state != "Completed":
        return Completed(name="RerunNotCompleted", message=f"re-run {name} ({rerun}) is {state}: {message}")
    remembered = remember_memory(crashed.deployment_id, decision.memory_mb)
    how = f"{crashed.deployment_name} now runs with {remembered} MB" if remembered else "its memory was already higher"
    logger.info("re-run %s completed with %s MB; %s", name, decision.memory_mb, how)
    return Completed(name="Healed", message=f"re-run {rerun} completed with {decision.memory_mb} MB; {how}")


def give_up(crashed: Crashed, decision: GiveUp, alert_block: str):  # noqa: ANN201 - returns a state
    """Alert the owner once and record it; start no run."""
    if already_gave_up(crashed.run_id):
        return Completed(name="AlreadyGaveUp", message=f"a healer already gave up on {crashed.run_id}")
    subject, body = oom.gave_up_alert(
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


def _pool_defaults(base_job_template: dict[str, Any]) -> dict[str, Any]:
    properties = base_job_template.get("variables", {}).get("properties", {})
    return {name: spec["default"] for name, spec in properties.items() if spec.get("default") is not None}
