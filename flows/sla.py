"""What the SLA flows share: the contract of a dataset, facts, alerts and events."""

import time
from datetime import UTC, datetime

from prefect import get_run_logger
from prefect.blocks.core import Block
from prefect.events import Event
from prefect.runtime import flow_run
from pyiceberg.catalog import Catalog

from blocks.contract import ReadinessContractBlock
from flows import events
from flows.common import io_task, platform, run_info
from flows.events import post_confirmed
from lakeops.datasets.names import ALERT_FAILED_EVENT, WINDOW_LABEL, TableRef
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake, tags
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness import markers, sla
from lakeops.readiness.contracts import ReadinessContract
from lakeops.readiness.ready import ReadySignal


def contract_of(dataset: str) -> ReadinessContract | None:
    """The dataset's contract from its block, or None when the dataset has no contract."""
    try:
        return ReadinessContractBlock.load(dataset.replace(".", "-").replace("_", "-")).contract
    except ValueError:  # Block.load: no such document
        return None


def made_by() -> Provenance:
    run = run_info()
    return Provenance(run.code_version, run.flow_run_id, "", "", operation="sla")


@io_task
def record(catalog: Catalog, facts: list[sla.SlaFact]) -> None:
    sla.record(catalog, facts, made_by())


@io_task
def notify(contract: ReadinessContract, subject: str, body: str) -> None:
    """Deliver through the contract's notification block; HTTP 5xx and connection errors are retried."""
    Block.load(contract.alert_block).notify(body=body, subject=subject)
    get_run_logger().info("sent to %s: %s", contract.alert_block, subject)


@io_task
def alert_failed(contract: ReadinessContract, window: str, subject: str, error: BaseException) -> None:
    """Make an undeliverable alert visible: an event beside the failed run."""
    post_event(
        ALERT_FAILED_EVENT,
        TableRef(*contract.dataset.split(".", 1)).resource_id,
        window,
        {"dataset": contract.dataset, "window": window, "subject": subject, "error": str(error)[:500]},
    )


def post_event(name: str, resource_id: str, window: str, payload: dict) -> None:
    """Send one event and wait until the server has it (emit_event is fire-and-forget)."""
    event = Event(
        event=name,
        resource={"prefect.resource.id": resource_id, WINDOW_LABEL: window},
        related=[{"prefect.resource.id": f"prefect.flow-run.{flow_run.get_id()}", "prefect.resource.role": "flow-run"}]
        if flow_run.get_id()
        else [],
        payload=payload,
    )
    event.payload["event_id"] = str(event.id)  # automations' parameter templates cannot read event.id
    post_confirmed(event)


@io_task
def decide(catalog: Catalog, contract: ReadinessContract, window: Window) -> sla.Fallback | sla.NoFallback:
    """The fallback: the newest window within max age in the dataset's last-known-good snapshot."""
    _, layer = platform().by_table(contract.dataset)
    table = lake.load(catalog, layer.table)
    good = tags.last_known_good(table)
    present = {w.day for w in lake.windows_in(table, layer.window, good.snapshot_id)} if good else set()
    return sla.decide_fallback(contract, window, good.snapshot_id if good else None, present)


@io_task
def confirm_automation_alert(opened_event_id: str, timeout: float = 20) -> bool:
    """Whether the automation's send-notification action for this opening succeeded (its events say)."""
    about = {
        "event": {"name": ["prefect.automation.action.executed", "prefect.automation.action.failed"]},
        "related": {"id": [f"prefect.event.{opened_event_id}"]},
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events.find(about)
        outcomes = [e.event for e in found if e.payload.get("action_type") == "send-notification"]
        if outcomes:
            return "prefect.automation.action.executed" in outcomes
        time.sleep(1)
    return False


def fresh_marker_exists(catalog: Catalog, dataset: str, window: str) -> bool:
    """True when the dataset already published a fresh (not stale) signal for the window."""
    namespace, name = dataset.split(".", 1)
    marker = markers.read_marker(lake.load(catalog, TableRef(namespace, name)), window)
    return marker is not None and not marker.stale


def now() -> datetime:
    return datetime.now(UTC)


@io_task
def note_signal(catalog: Catalog, signal: ReadySignal) -> None:
    """Record a fresh signal of a contracted dataset (its lateness is measured from the opening)."""
    if signal.stale or contract_of(signal.dataset) is None:
        return
    sla.record(
        catalog,
        [sla.SlaFact(signal.dataset, signal.window, sla.Fact.SIGNAL, now(), snapshot_id=signal.snapshot_id)],
        made_by(),
    )


@io_task
def resolve_if_caught_up(catalog: Catalog, input_dataset: str, output: ReadySignal) -> bool:
    """After a fresh build of a window that had a stale fallback: send the resolution, once."""
    contract = contract_of(input_dataset)
    if output.stale or contract is None:
        return False
    facts = sla.read(catalog, input_dataset, output.window)
    state = sla.window_state(contract, output.window, facts, now())
    if state.state != sla.State.CAUGHT_UP or any(f.kind == sla.Fact.RESOLVED for f in facts):
        return False
    subject, body = sla.resolution(contract, state, output.snapshot_id, output.dataset)
    notify(contract, subject, body)
    sla.record(
        catalog,
        [
            sla.SlaFact(
                input_dataset, output.window, sla.Fact.RESOLVED, now(), snapshot_id=output.snapshot_id, detail=subject
            )
        ],
        made_by(),
    )
    return True
