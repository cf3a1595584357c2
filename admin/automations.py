"""Automations as code: one SLA deadline per contract, a watcher on the clock itself, the healer, and
the watch on silent runs that hands the healer the runs whose process or worker died.

Created through the API, not owned by a deployment, so `prefect deploy` (which deletes and recreates
the automations a deployment owns, and with them any open proactive window) leaves them alone.
Upserted by name: running setup twice leaves one of each.
"""

from datetime import timedelta
from uuid import UUID

from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, RunDeployment, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from lakeops.datasets.names import (
    DEADLINE_HANDLER,
    DEADLINE_MISSED_FLOW,
    HEALER,
    HEALER_FLOW,
    HEARTBEAT_EVENT,
    READY_EVENT,
    SILENT_RUNS_AUTOMATION,
    WINDOW_LABEL,
    WINDOW_OPENED_EVENT,
    TableRef,
    deployment,
    opener_deployment,
)
from lakeops.readiness.contracts import ReadinessContract

MISSED_DEPLOYMENT = deployment(DEADLINE_MISSED_FLOW, DEADLINE_HANDLER)
HEALER_DEPLOYMENT = deployment(HEALER_FLOW, HEALER)
HEALED_TAG = "lakeops"  # crashed runs of deployments with this tag go to the healer
WATCHER_SILENCE = timedelta(hours=26)  # a daily clock that has not completed in 26 h has stopped
# Flow runs of the lakeops pool emit a heartbeat this often (the pool's env sets it: admin/setup.py);
# 30 s is Prefect's minimum. A run silent for three of them, a minute and a half, is dead: its
# process, or the worker whose process group it ran in, was killed, or its machine went away.
HEARTBEAT_SECONDS = 30
SILENCE = timedelta(seconds=3 * HEARTBEAT_SECONDS)
# A run that reaches one of these states stops its heartbeats on purpose. A flow's own name for a final
# state is the event's name too (`Completed(name="Stale")` posts prefect.flow-run.Stale), so the names
# the lakeops flows return are listed with Prefect's (a unit test reads them from flows/). A run still
# watched when it ends under another name is left as it is: the server refuses Crashed after a final state.
FINAL_STATE_NAMES = (
    *("Completed", "Failed", "Cancelled", "Crashed", "Cached"),
    *("Stale", "Missed", "NotMissed", "AlreadyAlerted", "AlreadyReady"),  # the SLA flows
    *("Healed", "Rerun", "RerunNotCompleted", "NotOurs", "GaveUp", "AlreadyGaveUp"),  # the healer
    *("Promoted", "Rejected"),  # releases
)
# Pending (claimed by a worker) opens the watch too: a worker that dies before its run's process is up
# leaves a Pending run whose first heartbeat never comes. Suspended ends it: a suspended run has no process.
SILENT_AFTER = frozenset({HEARTBEAT_EVENT, "prefect.flow-run.Pending"})
SILENT_EXPECT = frozenset(
    {HEARTBEAT_EVENT, "prefect.flow-run.Suspended"} | {f"prefect.flow-run.{name}" for name in FINAL_STATE_NAMES}
)


def deadline_automation(
    contract: ReadinessContract, missed_deployment: UUID, alert_block: UUID | None
) -> AutomationCore:
    """After window-opened, expect the dataset's ready event for that window within the buffer.

    On a miss: send the alert prepared in the opening event (server-side, the moment it fires), and
    run the handler (fallback, confirmation that the alert was delivered, retries if it was not).
    """
    resource_id = TableRef(*contract.dataset.split(".", 1)).resource_id
    return AutomationCore(
        name=f"lakeops sla: {contract.dataset}",
        description=f"No {READY_EVENT} for {contract.dataset} within {contract.buffer} of the window opening: "
        f"run {MISSED_DEPLOYMENT} (stale fallback + alert to {contract.owner}).",
        trigger=EventTrigger(
            posture=Posture.Proactive,
            after={WINDOW_OPENED_EVENT},
            expect={READY_EVENT},
            match={"prefect.resource.id": resource_id},
            for_each={"prefect.resource.id", WINDOW_LABEL},
            threshold=1,
            within=contract.buffer,
        ),
        actions=[
            *(
                [
                    SendNotification(
                        block_document_id=alert_block,
                        subject="{{ event.payload.alert_subject }}",
                        body="{{ event.payload.alert_body }}",
                    )
                ]
                if alert_block
                else []
            ),
            RunDeployment(
                source="selected",
                deployment_id=missed_deployment,
                parameters={
                    "params": {
                        "dataset": contract.dataset,
                        "window": "{{ event.payload.window }}",
                        "opened_event_id": "{{ event.payload.event_id }}",
                    }
                },
            ),
        ],
    )


def opener(contract: ReadinessContract) -> str:
    """The deployment that opens the contract's windows on its schedule."""
    return opener_deployment(contract.dataset)


def watcher_automation(contract: ReadinessContract, open_deployment: UUID, alert_block: UUID) -> AutomationCore:
    """Alert when a contract's window-opening deployment has not completed a run for WATCHER_SILENCE."""
    return AutomationCore(
        name=f"lakeops sla: the clock of {contract.dataset} stopped",
        description=f"{opener(contract)} completed no run in {WATCHER_SILENCE}: deadlines are not being watched.",
        trigger=EventTrigger(
            posture=Posture.Proactive,
            expect={"prefect.flow-run.Completed"},
            match_related={"prefect.resource.id": f"prefect.deployment.{open_deployment}"},
            threshold=1,
            within=WATCHER_SILENCE,
        ),
        actions=[
            SendNotification(
                block_document_id=alert_block,
                subject=f"[lakeops] SLA deadlines of {contract.dataset} are not being watched",
                body=f"{opener(contract)} has completed no run in {WATCHER_SILENCE}: no window was opened, so no "
                "missed deadline can fire. Check its schedule and the work pool.",
            )
        ],
    )


def healer_automation(healer: UUID) -> AutomationCore:
    """Every Crashed run of a lakeops deployment (but the healer's own) starts the healer with its id.

    The healer, not this automation, decides: an out-of-memory kill is re-run with doubled memory (a
    RunDeployment action's job variables are not templated), a run lost with its process or worker (marked
    Crashed by the silent-runs automation) is re-run once, anything else is left to the usual alerts.
    """
    return AutomationCore(
        name="lakeops healer: crashed runs",
        description=f"A crashed run of a deployment tagged {HEALED_TAG!r} starts {HEALER_DEPLOYMENT}: out of "
        "memory is re-run with double the memory up to the pool's memory_cap (at the cap the owner is alerted); "
        "a run lost with its process or worker is re-run once.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{HEALED_TAG}"},
                {"prefect.resource.role": "deployment", "prefect.resource.id": f"!prefect.deployment.{healer}"},
            ],
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            RunDeployment(
                source="selected",
                deployment_id=healer,
                parameters={"params": {"flow_run_id": "{{ event.resource.id }}"}},
            )
        ],
    )


def silent_runs_automation() -> AutomationCore:
    """A lakeops run that sends no heartbeat and reaches no final state for SILENCE is marked Crashed.

    Prefect's recipe for zombie runs (after a heartbeat, expect the next one or a final state, per run),
    opened by Pending too. The Crashed state's message starts with the automation's name, so the healer
    (started by that Crashed run) knows it was lost, not killed with an exit code, and re-runs it once.
    Not forced: the server refuses Crashed for a run that has reached a final state meanwhile.
    """
    return AutomationCore(
        name=SILENT_RUNS_AUTOMATION,
        description=f"A run of a deployment tagged {HEALED_TAG!r} that sends no heartbeat (every "
        f"{HEARTBEAT_SECONDS} s) for {SILENCE.total_seconds():.0f} s is marked Crashed; the healer re-runs it.",
        trigger=EventTrigger(
            posture=Posture.Proactive,
            after=set(SILENT_AFTER),
            expect=set(SILENT_EXPECT),
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{HEALED_TAG}"},
            for_each={"prefect.resource.id"},
            threshold=1,
            within=SILENCE,
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=silent_message())],
    )


def silent_message() -> str:
    """The message of the Crashed state a silent run is given: what was seen, and what happens next."""
    return (
        f"{SILENT_RUNS_AUTOMATION}: no heartbeat for {SILENCE.total_seconds():.0f} s (one is sent every "
        f"{HEARTBEAT_SECONDS} s), so its process or its worker died. The healer re-runs it once."
    )


def ensure_silent_runs_automation() -> UUID:
    """The silent-runs automation, upserted by name."""
    return upsert(silent_runs_automation())


def ensure_healer_automation() -> UUID:
    """The healer automation, upserted by name (setup runs it after the deployments exist)."""
    with get_client(sync_client=True) as client:
        healer = client.read_deployment_by_name(HEALER_DEPLOYMENT).id
    return upsert(healer_automation(healer))


def upsert(automation: AutomationCore) -> UUID:
    """Create the automation, or update the one with the same name (and delete duplicates)."""
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(automation.name)
        if not existing:
            return client.create_automation(automation)
        keep, *extra = existing
        client.update_automation(keep.id, automation)
        for duplicate in extra:
            client.delete_automation(duplicate.id)
        return keep.id


def ensure_sla_automations(contracts: list[ReadinessContract]) -> list[UUID]:
    """The deadline automation of every contract and, when alerts can be sent, the watcher."""
    with get_client(sync_client=True) as client:
        missed = client.read_deployment_by_name(MISSED_DEPLOYMENT).id
        openers = {c.dataset: client.read_deployment_by_name(opener(c)).id for c in contracts}
    blocks = {c.alert_block: _block_id(c.alert_block) for c in contracts}
    ids = [upsert(deadline_automation(c, missed, blocks[c.alert_block])) for c in contracts]
    for contract in contracts:
        if blocks[contract.alert_block]:
            ids.append(upsert(watcher_automation(contract, openers[contract.dataset], blocks[contract.alert_block])))
    return ids


def _block_id(slug_and_name: str) -> UUID | None:
    """The notification block document's id, or None when it does not exist (setup says so)."""
    try:
        return Block.load(slug_and_name)._block_document_id
    except ValueError:
        return None
