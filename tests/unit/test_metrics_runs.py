"""From the orchestrator's flow runs to run facts: every rule of lakeops/metrics/runs.py pinned."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lakeops.healing.oom import ROOT_TAG
from lakeops.healing.usage import Usage
from lakeops.metrics import runs
from lakeops.metrics.facts import Outcome
from lakeops.metrics.runs import FlowRunRecord

DUE = datetime(2026, 11, 29, 6, tzinfo=UTC)
COMMITTED = "2026-11-28T17:05:00+00:00"


def record(**changes) -> FlowRunRecord:  # noqa: ANN003
    base = FlowRunRecord(
        flow_run_id="run-1",
        deployment="build-layer/silver.flights",
        state_type="COMPLETED",
        state_name="Completed",
        expected_start=DUE,
        started=DUE + timedelta(seconds=3),
        ended=DUE + timedelta(seconds=63),
        run_count=1,
        deployment_version="git:abc",
        tags=("lakeops", "dataset:flights", runs.committed_tag("git:abc", COMMITTED)),
        parameters={"params": {"layer": "flights.silver", "window": "2026-11-28", "stale": "False"}},
        job_variables={"memory": 1024},
    )
    return replace(base, **changes)


def test_a_finished_run_becomes_its_fact():
    fact = runs.fact_of(record())
    assert fact is not None
    assert (fact.deployment, fact.dataset, fact.unit, fact.outcome) == (
        "build-layer/silver.flights",
        "flights",
        "2026-11-28",
        Outcome.COMPLETED,
    )
    assert (fact.code_version, fact.code_committed_at) == ("git:abc", datetime(2026, 11, 28, 17, 5, tzinfo=UTC))
    assert (fact.attempts, fact.stale, fact.duration_s) == (1, False, 60.0)
    assert (fact.requested_cpu, fact.requested_memory_mb, fact.cpu_seconds) == (None, 1024.0, None)


@pytest.mark.parametrize("state", ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"])
def test_an_unfinished_run_is_no_fact_yet(state):
    assert runs.fact_of(record(state_type=state)) is None


def test_the_unit_is_the_window_else_the_heal_chain_else_the_run():
    assert runs.unit_of(record()) == "2026-11-28"
    assert runs.unit_of(record(parameters={"window": "2026-11-27"})) == "2026-11-27"  # a flow of plain parameters
    healed = record(flow_run_id="run-2", parameters={"params": {}}, tags=(f"{ROOT_TAG}run-1",))
    assert runs.unit_of(healed) == "run-1" == runs.unit_of(record(parameters={"params": {"dataset": "flights"}}))
    assert runs.unit_of(record(flow_run_id="run-9", parameters={})) == "run-9"


def test_a_stale_run_by_its_parameter_or_its_state_name():
    templated = record(parameters={"params": {"window": "2026-11-28", "stale": "True"}})  # from an event's payload
    assert runs.fact_of(templated).stale  # type: ignore[union-attr]
    assert runs.fact_of(record(state_name="Stale")).stale  # type: ignore[union-attr]
    assert not runs.fact_of(record(state_name="Missed")).stale  # type: ignore[union-attr]


def test_attempts_are_the_run_count_and_a_run_that_never_started_counts_one():
    assert runs.fact_of(record(run_count=2)).attempts == 2  # type: ignore[union-attr]
    crashed = runs.fact_of(record(state_type="CRASHED", run_count=0, started=None, ended=None))
    assert crashed is not None and (crashed.attempts, crashed.outcome, crashed.duration_s) == (1, Outcome.CRASHED, 0)


def test_an_ecs_pool_counts_cpu_in_units_of_1024_and_usage_is_attached():
    used = Usage("run-1", 0, 42.5, 300.0, None, "none", 61.0)
    fact = runs.fact_of(record(work_pool_type="ecs", job_variables={"cpu": "512", "memory": 2048}), used)
    assert fact is not None
    assert (fact.work_pool_type, fact.requested_cpu, fact.requested_memory_mb) == ("ecs", 0.5, 2048.0)
    assert (fact.cpu_seconds, fact.peak_memory_mb) == (42.5, 300.0)
    assert runs.fact_of(record(job_variables={"cpu": 2, "memory": None})).requested_cpu == 2.0  # type: ignore[union-attr]


def test_memory_used_is_the_working_set_where_sampled_and_the_peak_after_an_oom_kill():
    # The cgroup's peak counts page cache up to the limit: a run that read big files would look as large as its limit.
    sampled = Usage("run-1", 0, 42.5, 2040.0, 2048, "cgroup", 61.0, peak_working_set_mb=700.0)
    killed = Usage("run-2", 137, 42.5, 2048.0, 2048, "cgroup", 61.0, peak_working_set_mb=1900.0)
    for usage, used in ((sampled, 700.0), (killed, 2048.0)):
        fact = runs.fact_of(record(), usage)
        assert fact is not None and fact.peak_memory_mb == used


def test_commit_times_come_from_the_tags_and_a_deploy_without_git_records_none():
    tags = [
        runs.committed_tag("git:abc", COMMITTED),
        runs.committed_tag("lakeops==0.1.0", "unknown"),  # deployed where git could not tell
        runs.committed_tag("git:def", "2026-11-28T17:05:00"),  # no offset: not an instant
        "dataset:flights",
    ]
    assert runs.committed_in(tags) == {"git:abc": datetime(2026, 11, 28, 17, 5, tzinfo=UTC)}
    other = runs.fact_of(record(deployment_version="git:zzz"))
    assert other is not None and other.code_committed_at is None  # the tag is another version's
