"""A missed deadline (started by the contract's proactive automation): fallback, alert, record."""

from datetime import date

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment
from prefect.states import Completed
from pydantic import BaseModel, Field

from flows.alerts import alert_on_failure
from flows.common import io_task, open_lakehouse, platform
from flows.sla import (
    alert_failed,
    confirm_automation_alert,
    contract_of,
    decide,
    fresh_marker_exists,
    notify,
    now,
    record,
)
from lakeops.datasets.names import DEADLINE_MISSED_FLOW
from lakeops.datasets.windows import Window
from lakeops.readiness import sla
from lakeops.readiness.contracts import ReadinessContract


class MissedParams(BaseModel):
    dataset: str = Field(description="Dataset whose signal did not come by the deadline.")
    window: date = Field(description="The window whose signal is missing.")
    opened_event_id: str | None = Field(
        default=None, description="The window-opened event whose automation sent the alert (to confirm it)."
    )
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@io_task
def start_stale_consumer(contract: ReadinessContract, window: Window, fallback: sla.Fallback) -> str:
    """Start the consumer on the fallback snapshot, marked stale; do not wait for it."""
    _, consumer = platform().by_table(contract.consumer.split("/", 1)[1])  # build-layer/<the table it writes>
    params = {
        "layer": platform().qualified(consumer),
        "window": window.key,
        "snapshot_id": fallback.snapshot_id,
        "stale": True,
        "fallback_window": fallback.source_window.isoformat(),
    }
    run = run_deployment(contract.consumer, parameters={"params": params}, timeout=0)
    return str(run.id)


@flow(name=DEADLINE_MISSED_FLOW, flow_run_name="{params.dataset} {params.window}", on_failure=[alert_on_failure()])
def deadline_missed(params: MissedParams):  # noqa: ANN201 - returns a state
    """Run the consumer on the last good data (or say why not), and alert the owner; once per window."""
    contract = contract_of(params.dataset)
    if contract is None:
        raise ValueError(f"{params.dataset} has no readiness contract block; run `lakeops setup`")
    _, catalog = open_lakehouse(params.lakehouse)
    window, moment = Window.parse(params.window), now()
    if fresh_marker_exists(catalog, contract.dataset, window.key):
        return Completed(name="NotMissed", message=f"{contract.dataset} {window} signalled before the check")
    facts = sla.read(catalog, contract.dataset, window.key)
    kinds = {f.kind for f in facts}
    state = sla.window_state(contract, window.key, facts, moment)
    decision = decide(catalog, contract, window)
    if not kinds & {sla.Fact.FALLBACK, sla.Fact.NO_FALLBACK}:  # a rerun never starts a second consumer
        new = [
            sla.SlaFact(
                contract.dataset, window.key, sla.Fact.DEADLINE_MISSED, moment, state.expected_at, state.deadline
            )
        ]
        if isinstance(decision, sla.Fallback):
            consumer_run = start_stale_consumer(contract, window, decision)
            new.append(
                sla.SlaFact(
                    contract.dataset,
                    window.key,
                    sla.Fact.FALLBACK,
                    now(),
                    snapshot_id=decision.snapshot_id,
                    source_window=decision.source_window.isoformat(),
                    detail=f"consumer run {consumer_run}",
                )
            )
        else:
            new.append(sla.SlaFact(contract.dataset, window.key, sla.Fact.NO_FALLBACK, now(), detail=decision.reason))
        record(catalog, new)
    if sla.Fact.ALERT_SENT in kinds:
        return Completed(name="AlreadyAlerted")
    subject, body = sla.alert(contract, state, moment, decision)
    sent_by_automation = confirm_automation_alert(params.opened_event_id) if params.opened_event_id else False
    if not sent_by_automation:
        alert_failed(contract, window.key, subject, RuntimeError("the automation's notification was not delivered"))
        try:
            notify(contract, subject, body)  # retried with backoff: the alert still has to reach a human
        except Exception as error:
            failed = sla.SlaFact(contract.dataset, window.key, sla.Fact.ALERT_FAILED, now(), detail=str(error)[:500])
            record(catalog, [failed])
            raise
    how = "by the automation" if sent_by_automation else "by this run, after the automation's attempt failed"
    record(
        catalog, [sla.SlaFact(contract.dataset, window.key, sla.Fact.ALERT_SENT, now(), detail=f"{subject} ({how})")]
    )
    get_run_logger().warning("%s (sent %s)\n%s", subject, how, body)
    return Completed(name="Stale" if isinstance(decision, sla.Fallback) else "Missed", message=subject)
