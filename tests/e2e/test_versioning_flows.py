"""Validation gate, replay and maintenance as deployments on a real server."""

from datetime import date

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from admin import runs
from declarations.flights import landing
from declarations.flights import v2 as flights_v2
from lakeops.datasets.names import MAINTAIN_FLOW, MAINTENANCE, deployment, replay_deployment
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake, tags
from lakeops.versioning import maintenance, replay
from tests.e2e.conftest import BRONZE_FLIGHTS, GOLD_DAILY_DELAYS, SILVER_FLIGHTS, window_filter

pytestmark = pytest.mark.e2e
REPLAY = replay_deployment("flights")  # replay/replay-flights
MAINTAIN = deployment(MAINTAIN_FLOW, MAINTENANCE)  # maintain-tables/all-tables


def test_output_that_fails_its_audit_is_never_committed_nor_signalled_and_the_run_fails(e2e) -> None:
    good_day, bad_day = date(2013, 3, 1), date(2013, 3, 2)
    landing.drop_day_file(e2e.landing, good_day)
    e2e.follow(good_day, e2e.run_producer(good_day))
    silver = lake.load(e2e.catalog, SILVER_FLIGHTS)
    good = tags.last_known_good(silver)
    assert good is not None and good.snapshot_id == silver.current_snapshot().snapshot_id

    rows = landing.day_rows(bad_day)
    rows.loc[rows.index[5], "air_time"] = -12.0  # parses (Bronze accepts it) but is impossible
    landing.drop_day_file(e2e.landing, bad_day, rows.to_csv(index=False))
    producer = e2e.run_producer(bad_day)
    assert producer.state.is_completed(), producer.state.message
    bronze_snapshot = lake.snapshot_of_run(lake.load(e2e.catalog, BRONZE_FLIGHTS), str(producer.id))
    failed = runs.wait_for_run(
        runs.builder(SILVER_FLIGHTS),
        runs.consumer_of(bronze_snapshot.snapshot_id, Window(bad_day), producer),
    )

    assert failed.state.is_failed()
    message = failed.state.message
    assert "air_time" in message and "nothing committed" in message
    assert f"last-known-good at {good.snapshot_id}" in message
    silver.refresh()
    assert tags.last_known_good(silver).snapshot_id == good.snapshot_id
    # Audited before publishing: the window never reached main, so no consumer was started on it.
    assert silver.current_snapshot().snapshot_id == good.snapshot_id
    assert lake.read(silver, window_filter(SILVER_FLIGHTS, Window(bad_day))).empty
    assert lake.snapshot_of_run(silver, str(failed.id)) is None
    assert runs.joined_runs(e2e.registry, "flights.gold", bad_day) == []
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs()
    audits = [t for t in task_runs if t.flow_run_id == failed.id and t.name.startswith("audit")]
    assert len(audits) == 1 and audits[0].run_count == 1  # data logic is never retried


def test_replay_deployment_writes_a_branch_and_leaves_main_alone(e2e) -> None:
    days = [date(2013, 3, 10), date(2013, 3, 11)]
    for day in days:
        landing.drop_day_file(e2e.landing, day)
        e2e.follow(day, e2e.run_producer(day))
    gold = lake.load(e2e.catalog, GOLD_DAILY_DELAYS)
    main_before = gold.current_snapshot().snapshot_id

    params = {
        "dataset": "flights",
        "transform_version": "v2",
        "start": days[0].isoformat(),
        "end": days[-1].isoformat(),
    }
    run = run_deployment(REPLAY, parameters={"params": params}, timeout=300, poll_interval=0.5)

    assert run.state.is_completed(), run.state.message
    gold.refresh()
    assert gold.current_snapshot().snapshot_id == main_before
    first = Window(days[0])
    branch = lake.read(
        gold, window_filter(GOLD_DAILY_DELAYS, first), lake.head(gold, replay.branch_name("v2")).snapshot_id
    )
    silver = lake.read(lake.load(e2e.catalog, SILVER_FLIGHTS), window_filter(SILVER_FLIGHTS, first))
    expected = flights_v2.to_gold(silver)
    got = branch.sort_values("origin").reset_index(drop=True)
    pd.testing.assert_series_equal(got["cancelled"], expected["cancelled"], check_dtype=False)
    assert got["cancelled"].sum() > lake.read(gold, window_filter(GOLD_DAILY_DELAYS, first))["cancelled"].sum()


def test_maintenance_deployment_is_scheduled_and_runs(e2e) -> None:
    with get_client(sync_client=True) as client:
        maintainer = client.read_deployment_by_name(MAINTAIN)
    assert [s.schedule.cron for s in maintainer.schedules] == ["30 3 * * *"]

    before = {s.snapshot_id for s in lake.load(e2e.catalog, GOLD_DAILY_DELAYS).snapshots()}
    keep = 2
    assert len(before) > keep + 1, "the earlier tests left too few Gold snapshots to expire any"
    params = {"keep_last": keep, "max_age_hours": 0, "orphan_grace_minutes": 0}
    run = run_deployment(MAINTAIN, parameters={"params": params}, timeout=300, poll_interval=0.5)

    assert run.state.is_completed(), run.state.message
    gold = lake.load(e2e.catalog, GOLD_DAILY_DELAYS)
    after = sorted(gold.snapshots(), key=lambda s: s.sequence_number, reverse=True)
    newest = {s.snapshot_id for s in after[:keep]}
    protected = maintenance.protected_snapshots(e2e.catalog, e2e.registry, GOLD_DAILY_DELAYS)
    assert len(after) < len(before)
    assert {s.snapshot_id for s in after} <= newest | protected
    assert tags.last_known_good(gold) is not None
    for snapshot_id in protected:  # tagged and replay-branch snapshots are still readable
        lake.read(gold, window_filter(GOLD_DAILY_DELAYS, Window(date(2013, 3, 10))), snapshot_id)
