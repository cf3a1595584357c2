"""The deadline clock: announce that a window's signal is now due (scheduled at the contract's time)."""

from datetime import date

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.states import Completed
from pydantic import BaseModel, Field

from flows.alerts import alert_on_failure
from flows.common import open_lakehouse
from flows.sla import contract_of, decide, fresh_marker_exists, now, post_event, record
from lakeops.datasets.names import OPEN_WINDOW_FLOW, WINDOW_OPENED_EVENT, TableRef
from lakeops.datasets.windows import Window
from lakeops.readiness import sla


class OpenParams(BaseModel):
    dataset: str = Field(description="The contracted table whose readiness to watch, e.g. bronze.flights.")
    window: date | None = Field(
        default=None, description="Window to open; default: the one due at the scheduled time (yesterday)."
    )
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@flow(name=OPEN_WINDOW_FLOW, on_failure=[alert_on_failure()])
def open_window(params: OpenParams):  # noqa: ANN201 - returns a state
    """Record the window as opened and emit `lakeops.sla.window-opened`, unless its signal is already in."""
    contract = contract_of(params.dataset)
    if contract is None:
        raise ValueError(f"{params.dataset} has no readiness contract block; run `lakeops setup`")
    _, catalog = open_lakehouse(params.lakehouse)
    moment = now()
    scheduled = params.window is None
    window = (
        contract.window_due_at(flow_run.get_scheduled_start_time() or moment)
        if scheduled
        else Window.parse(params.window)
    )  # noqa: E501
    opened = sla.opening(contract, window, moment, scheduled)
    record(catalog, [opened])
    if fresh_marker_exists(catalog, contract.dataset, window.key):
        get_run_logger().info("%s %s: the signal is already in, nothing to watch", contract.dataset, window)
        return Completed(name="AlreadyReady", message=f"{contract.dataset} {window} was ready before it was due")
    # The alert is prepared now, so that the automation sends it the moment the deadline passes
    # (a flow run would start seconds later); the handler re-decides and confirms delivery.
    plan = decide(catalog, contract, window)
    state = sla.window_state(contract, window.key, [opened], moment)
    subject, body = sla.alert(contract, state, opened.deadline, plan)
    namespace, name = contract.dataset.split(".", 1)
    post_event(
        WINDOW_OPENED_EVENT,
        TableRef(namespace, name).resource_id,
        window.key,
        {
            "dataset": contract.dataset,
            "window": window.key,
            "expected_at": opened.expected_at.isoformat(),
            "deadline": opened.deadline.isoformat(),
            "buffer_seconds": contract.buffer.total_seconds(),
            "alert_subject": subject,
            "alert_body": body,
        },
    )
    get_run_logger().info("%s %s opened: deadline %s", contract.dataset, window, opened.deadline.isoformat())
    return Completed(message=f"{contract.dataset} {window} due by {opened.deadline.isoformat()}")
