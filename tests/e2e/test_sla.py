"""Readiness contracts on a real server: proactive deadline, alert over real HTTP, stale fallback, catch-up."""

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from admin import runs
from admin.automations import MISSED_DEPLOYMENT, ensure_sla_automations, opener
from admin.setup import deploy_all, save_contracts
from declarations.flights import landing
from lakeops.datasets.names import ALERT_FAILED_EVENT
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.readiness import contracts, sla
from tests.e2e.conftest import BRONZE_FLIGHTS, BUFFER_SECONDS, GOLD_DAILY_DELAYS, SILVER_FLIGHTS, window_filter

pytestmark = pytest.mark.e2e
DATASET = BRONZE_FLIGHTS.identifier  # the contracted table: bronze.flights


def open_window(e2e, day: date):  # noqa: ANN001, ANN201
    run = run_deployment(
        opener(sla_contract(e2e)),
        parameters={"params": {"dataset": DATASET, "window": day.isoformat()}},
        timeout=120,
        poll_interval=0.5,
    )
    assert run.state.is_completed(), run.state.message
    return run


def opened_at(e2e, day: date) -> datetime:
    facts = sla.read(e2e.catalog, DATASET, day.isoformat())
    return next(f.at for f in facts if f.kind == sla.Fact.OPENED)


def missed_run(day: date, timeout: float = 90):  # noqa: ANN201
    def matches(run) -> bool:  # noqa: ANN001
        return run.parameters.get("params", {}).get("window") == day.isoformat()

    return runs.wait_for_run(MISSED_DEPLOYMENT, matches, timeout)


def silver_runs(day: date) -> list:
    dep = runs.deployment_id(runs.builder(SILVER_FLIGHTS))
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(limit=200)
    return [r for r in found if r.deployment_id == dep and r.parameters["params"]["window"] == day.isoformat()]


def state_of(e2e, day: date) -> sla.State:
    contract = sla_contract(e2e)
    return sla.window_state(
        contract, day.isoformat(), sla.read(e2e.catalog, DATASET, day.isoformat()), datetime.now(UTC)
    ).state


def sla_contract(e2e) -> contracts.ReadinessContract:  # noqa: ANN001
    contract = contracts.of(e2e.registry, e2e.flights)
    assert contract.dataset == DATASET
    return contract


def test_a_signal_inside_the_buffer_raises_no_alert_and_runs_no_fallback(e2e) -> None:
    day = date(2013, 3, 20)
    landing.drop_day_file(e2e.landing, day)
    open_window(e2e, day)
    producer = e2e.run_producer(day)  # lands within the buffer
    e2e.follow(day, producer)
    time.sleep(BUFFER_SECONDS + 10)

    assert e2e.receiver.about(day.isoformat()) == []
    with pytest.raises(TimeoutError):
        missed_run(day, timeout=2)
    assert all(not r.parameters["params"].get("stale") for r in silver_runs(day))
    assert state_of(e2e, day) == sla.State.ON_TIME


def test_a_late_signal_alerts_runs_stale_then_catches_up(e2e) -> None:
    before, day = date(2013, 3, 21), date(2013, 3, 22)
    landing.drop_day_file(e2e.landing, before)
    e2e.follow(before, e2e.run_producer(before))
    bronze_good = lake.load(e2e.catalog, BRONZE_FLIGHTS).snapshot_by_name("last-known-good").snapshot_id

    open_window(e2e, day)
    alert = e2e.receiver.wait_for(f"{DATASET} {day.isoformat()} missed", timeout=BUFFER_SECONDS + 40)

    assert alert.at - opened_at(e2e, day).timestamp() <= BUFFER_SECONDS + 10
    for part in (
        DATASET,
        day.isoformat(),
        runs.producer(e2e.flights),  # ingest/bronze.flights
        "deadline",
        "late by",
        f"snapshot {bronze_good}",
        f"carrying forward window {before.isoformat()}",
    ):
        assert part in alert.body, part
    handler = missed_run(day)
    assert handler.state.is_completed() and handler.state.name == "Stale"
    stale_silver = runs.wait_for_run(
        runs.builder(SILVER_FLIGHTS), lambda r: r.parameters["params"].get("window") == day.isoformat()
    )
    assert stale_silver.state.is_completed(), stale_silver.state.message
    silver = lake.load(e2e.catalog, SILVER_FLIGHTS)
    made = lake.provenance_of(lake.snapshot_of_run(silver, str(stale_silver.id)))
    assert made.stale and made.carried_from == before.isoformat()
    assert made.inputs == {DATASET: bronze_good}
    gold_stale = runs.wait_for_run(
        runs.builder(GOLD_DAILY_DELAYS), lambda r: r.parameters["params"].get("window") == day.isoformat()
    )
    gold_made = lake.provenance_of(lake.snapshot_of_run(lake.load(e2e.catalog, GOLD_DAILY_DELAYS), str(gold_stale.id)))
    assert gold_made.stale  # staleness propagates through the stale ready event
    assert state_of(e2e, day) == sla.State.STALE

    # The real data lands late: the normal triggers replace the stale window, and say so.
    landing.drop_day_file(e2e.landing, day)
    trace = e2e.follow(day, e2e.run_producer(day))
    resolution = e2e.receiver.wait_for(f"{DATASET} {day.isoformat()} caught up", timeout=60)
    silver_snapshot, gold_snapshot = (s.snapshot_id for s in trace.snapshots[1:])
    assert str(silver_snapshot) in resolution.body
    window_rows = lake.read(lake.load(e2e.catalog, SILVER_FLIGHTS), window_filter(SILVER_FLIGHTS, Window(day)))
    assert len(window_rows) == len(landing.day_rows(day))  # exactly one copy, the real one
    bronze_rows = lake.read(lake.load(e2e.catalog, BRONZE_FLIGHTS), window_filter(BRONZE_FLIGHTS, Window(day)))
    assert set(window_rows["_batch_id"]) == set(bronze_rows["_batch_id"])  # no carried-forward row left
    assert not lake.provenance_of(lake.load(e2e.catalog, GOLD_DAILY_DELAYS).snapshot_by_id(gold_snapshot)).stale
    assert state_of(e2e, day) == sla.State.CAUGHT_UP
    assert len(e2e.receiver.about(f"{day.isoformat()} missed")) == 1


def test_no_usable_fallback_means_no_consumer_run_and_an_alert_that_says_so(e2e) -> None:
    day = date(2013, 6, 30)  # nothing ingested within two days before it
    open_window(e2e, day)

    alert = e2e.receiver.wait_for(f"{DATASET} {day.isoformat()} missed", timeout=BUFFER_SECONDS + 40)

    assert "No fallback" in alert.body and "not run" in alert.body
    assert missed_run(day).state.name == "Missed"
    time.sleep(3)
    assert silver_runs(day) == []
    assert state_of(e2e, day) == sla.State.MISSED


def test_an_undeliverable_alert_fails_the_run_visibly_after_retries(e2e) -> None:
    day = date(2013, 7, 31)
    e2e.receiver.failing = True
    attempts_before = e2e.receiver.attempts
    try:
        open_window(e2e, day)
        handler = missed_run(day, timeout=120)
    finally:
        e2e.receiver.failing = False

    assert handler.state.is_failed()
    assert e2e.receiver.attempts - attempts_before >= 2  # delivery was retried
    body = {"filter": {"event": {"name": [ALERT_FAILED_EVENT]}}, "limit": 50}
    with get_client(sync_client=True) as client:
        events = client.request("POST", "/events/filter", json=body).json()["events"]
    assert any(e["payload"]["window"] == day.isoformat() for e in events)
    kinds = {f.kind for f in sla.read(e2e.catalog, DATASET, day.isoformat())}
    assert sla.Fact.ALERT_FAILED in kinds and sla.Fact.ALERT_SENT not in kinds


def test_automations_are_idempotent_and_survive_a_redeploy(e2e) -> None:
    name = f"lakeops sla: {DATASET}"
    with get_client(sync_client=True) as client:
        (first,) = client.read_automations_by_name(name)
    ensure_sla_automations(save_contracts(e2e.registry))
    deploy_all(e2e.stack)
    with get_client(sync_client=True) as client:
        after = client.read_automations_by_name(name)
        watchers = client.read_automations_by_name(f"lakeops sla: the clock of {DATASET} stopped")
    assert [a.id for a in after] == [first.id]
    assert len(watchers) == 1
    assert after[0].trigger.within == timedelta(seconds=BUFFER_SECONDS)
