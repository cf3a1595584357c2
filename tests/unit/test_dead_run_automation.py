"""Dead runs: the silent-runs automation, the heartbeat the pool gives every run, the healer's rule for a lost
run, and what a publisher waits for after its ready event. No server: the records, Prefect's own job
configuration, and the decisions."""

import asyncio
import re

import pytest
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import Posture
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker

from admin import automations
from admin.automations import FINAL_STATE_NAMES, HEARTBEAT_SECONDS, SILENCE, silent_message, silent_runs_automation
from admin.setup import HEARTBEAT_ENV, heartbeating, lakeops_pool, memory_limited
from admin.stack import PROJECT_DIR
from flows.common import Consumer, single_input_consumers
from flows.heal_crashed_run import lost_alert
from lakeops.datasets import registry as registry_file
from lakeops.datasets.names import HEARTBEAT_EVENT, SILENT_RUNS_AUTOMATION, TableRef
from lakeops.healing import oom
from lakeops.healing.lost import LOST_TAG, Restart, decide_lost, was_lost
from lakeops.healing.oom import Crash, GiveUp, NotOurs, Rerun
from lakeops.readiness.ready import ReadySignal

FLOWS = PROJECT_DIR / "flows"
REGISTRY = registry_file.load(PROJECT_DIR / "datasets.yaml")  # flights, weather and their join
LOST = silent_message()


def test_a_run_is_watched_from_pending_or_a_heartbeat_until_the_next_heartbeat_or_a_final_state() -> None:
    trigger = silent_runs_automation().trigger

    assert trigger.posture == Posture.Proactive
    assert trigger.after == {HEARTBEAT_EVENT, "prefect.flow-run.Pending"}
    assert trigger.for_each == {"prefect.resource.id"}  # one watch per run
    assert trigger.threshold == 1
    assert trigger.match_related.root == {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.lakeops"}
    for final in ("Completed", "Failed", "Cancelled", "Crashed", "Suspended"):
        assert f"prefect.flow-run.{final}" in trigger.expect
    assert HEARTBEAT_EVENT in trigger.expect


def test_no_state_a_live_run_passes_through_ends_its_watch() -> None:
    """A Running (or Paused) event in `expect` would close the window until the next heartbeat: a run dying
    between the two would never be caught. A paused run keeps its process, and its heartbeats."""
    expect = silent_runs_automation().trigger.expect
    for alive in ("Pending", "Running", "Paused", "Cancelling", "Retrying", "AwaitingRetry", "Scheduled"):
        assert f"prefect.flow-run.{alive}" not in expect


def test_silence_is_three_heartbeats_and_the_heartbeat_is_prefects_minimum() -> None:
    assert HEARTBEAT_SECONDS == 30
    assert silent_runs_automation().trigger.within == SILENCE == 3 * automations.timedelta(seconds=HEARTBEAT_SECONDS)


def test_a_silent_run_is_marked_crashed_not_forced_with_a_message_the_healer_recognises() -> None:
    (action,) = silent_runs_automation().actions

    assert isinstance(action, ChangeFlowRunState)
    assert action.state == StateType.CRASHED and action.name is None  # a plain Crashed: the healer's trigger
    assert action.force is False  # the server refuses Crashed after a final state
    assert action.message == LOST and LOST.startswith(SILENT_RUNS_AUTOMATION)
    assert silent_runs_automation().name == SILENT_RUNS_AUTOMATION


def test_every_final_state_name_a_flow_returns_ends_the_watch() -> None:
    """A named final state posts its own event (`Completed(name="Stale")` is prefect.flow-run.Stale)."""
    source = "\n".join(path.read_text() for path in FLOWS.glob("*.py"))
    given = re.findall(r"(?:Completed|Failed|Cancelled|Crashed)\(\s*name=(\"\w+\"(?: if .*? else \"\w+\")?)", source)
    named = {name for expression in given for name in re.findall(r"\"(\w+)\"", expression)}
    assert {"Stale", "Missed", "Healed"} <= named, "the pattern no longer finds the flows' named states"
    assert named <= set(FINAL_STATE_NAMES), named - set(FINAL_STATE_NAMES)


def test_the_pool_gives_every_run_the_heartbeat_the_automation_expects() -> None:
    template = lakeops_pool(ProcessWorker.get_default_base_job_template())

    resolved = configuration(template, {})
    own_env = configuration(template, {"env": {"TEAM_SETTING": "1"}, "memory": 300})

    assert resolved.env[HEARTBEAT_ENV] == str(HEARTBEAT_SECONDS)
    assert own_env.env[HEARTBEAT_ENV] == str(HEARTBEAT_SECONDS)  # a deployment's own env is merged over it
    assert own_env.env["TEAM_SETTING"] == "1" and own_env.env["LAKEOPS_MEMORY_MB"] == "300"


def test_the_pool_template_is_idempotent_and_keeps_the_memory_limit() -> None:
    template = lakeops_pool(ProcessWorker.get_default_base_job_template())

    assert lakeops_pool(template) == template == memory_limited(template) == heartbeating(template)
    assert template["job_configuration"]["env"] == {"LAKEOPS_MEMORY_MB": "{{ memory }}"}


def configuration(template: dict, values: dict) -> ProcessJobConfiguration:
    """Prefect's own resolution of a run's job configuration (no block references: no client is called)."""
    return asyncio.run(ProcessJobConfiguration.from_template_and_values(template, values, client=object()))


def crash(message: str | None = LOST, tags: set[str] = frozenset(), memory: int | None = None) -> Crash:
    return Crash("run-1", message, memory, 8192, frozenset(tags))


@pytest.mark.parametrize(
    ("message", "lost"),
    [
        (LOST, True),
        ("Process exited with status code: 137. Process was killed, likely due to an out-of-memory (OOM)", False),
        ("Process exited with status code: -9. Process exited due to a SIGKILL signal.", False),
        ("Crash detected! Execution was interrupted by an unexpected exception", False),
        (None, False),
    ],
)
def test_a_run_is_lost_only_when_the_silent_runs_automation_marked_it(message: str | None, lost: bool) -> None:
    assert was_lost(crash(message)) is lost


@pytest.mark.parametrize(
    ("message", "lost"),
    [
        ("Flow run infrastructure exited with non-zero status code 1. Process exited with a general error.", True),
        ("Process exited with status code: 137. Process was killed, likely due to an out-of-memory (OOM)", False),
    ],
)
def test_a_run_that_crashed_before_its_flow_started_is_lost_unless_out_of_memory(message: str, lost: bool) -> None:
    before_running = Crash("run-1", message, 200, 8192, started=False)

    assert was_lost(before_running) is lost
    assert was_lost(Crash("run-1", message, 200, 8192, started=True)) is False  # its own code ran: not ours


def test_a_lost_run_is_rerun_once_as_it_was_with_one_rerun_per_crash() -> None:
    decision = decide_lost(crash(tags={"lakeops", "silver"}))

    assert isinstance(decision, Restart)
    assert decision.idempotency_key == oom.idempotency_key("run-1")
    assert {"lakeops", "silver", LOST_TAG, oom.HEALS_TAG + "run-1", oom.ROOT_TAG + "run-1"} <= decision.tags
    assert f"{oom.ATTEMPT_TAG}1" in decision.tags
    assert decide_lost(crash(tags={"lakeops", "silver"})) == decision


def test_a_rerun_of_a_lost_run_that_is_lost_again_goes_to_a_human() -> None:
    rerun = decide_lost(crash())
    assert isinstance(rerun, Restart)

    again = decide_lost(Crash("run-2", LOST, None, 8192, rerun.tags))

    assert isinstance(again, GiveUp) and again.classification == "infrastructure"
    assert "run-1" in again.reason


def test_an_out_of_memory_rerun_that_is_lost_is_rerun_once_and_keeps_doubling_afterwards() -> None:
    oom_rerun = oom.decide(crash(message="Process exited with status code: 137.", memory=200))
    assert isinstance(oom_rerun, Rerun)

    lost = decide_lost(Crash("run-2", LOST, 400, 8192, oom_rerun.tags))
    assert isinstance(lost, Restart) and f"{oom.ATTEMPT_TAG}2" in lost.tags
    after = oom.decide(Crash("run-3", "Process exited with status code: 137.", 400, 8192, lost.tags))
    assert isinstance(after, Rerun) and after.memory_mb == 800


def test_a_lost_run_is_no_out_of_memory_crash() -> None:
    assert isinstance(oom.decide(crash()), NotOurs)  # no exit code: the lost-run rule decides, not doubling


def test_the_lost_twice_alert_names_the_run_what_was_seen_and_where_to_look() -> None:
    lost = Crash("run-2", LOST, None, 8192, decide_lost(crash()).tags)  # type: ignore[union-attr]
    decision = decide_lost(lost)
    assert isinstance(decision, GiveUp)

    subject, body = lost_alert("build-layer/silver.flights", "flights.silver 2013-08-12", "run-2", lost, decision, "u")

    assert "build-layer/silver.flights lost twice in a row" in subject
    for part in ("run-2", "first run run-1", "no heartbeat for 90 s", "worker's log", "Run: u"):
        assert part in body, part


def signal(dataset: str = "bronze.flights", snapshot: int = 7) -> ReadySignal:
    from datetime import UTC, datetime

    return ReadySignal(dataset, snapshot, "2013-08-12", 10, "f", "v", False, datetime(2013, 8, 12, tzinfo=UTC))


def test_a_ready_event_waits_for_the_runs_of_the_layers_that_read_only_it() -> None:
    (silver,) = single_input_consumers(REGISTRY, "flights.bronze", signal())

    assert silver.deployment == "build-layer/silver.flights"
    assert silver.started_by({"layer": "flights.silver", "window": "2013-08-12", "snapshot_id": 7, "stale": False})
    assert not silver.started_by({"layer": "flights.silver", "window": "2013-08-12", "snapshot_id": 6})
    assert not silver.started_by({"layer": "flights.silver", "window": "2013-08-11", "snapshot_id": 7})


def test_a_layer_of_several_inputs_is_waited_for_on_its_own_inputs_ready_event() -> None:
    joined = [layer for _, layer in REGISTRY.consumers("flights.silver") if len(layer.inputs) > 1]
    consumers = single_input_consumers(REGISTRY, "flights.silver", signal("silver.flights"))

    assert joined and all(c.table != layer.table for c in consumers for layer in joined)
    gate = Consumer(TableRef("gold", "flight_weather"), {"window": "2013-08-12", "inputs": {"flights.silver": 7}})
    assert gate.started_by({"window": "2013-08-12", "inputs": {"flights.silver": 7}, "stale": False})
    assert not gate.started_by({"window": "2013-08-12", "inputs": {"flights.silver": 8}})
