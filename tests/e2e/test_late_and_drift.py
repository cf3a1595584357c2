"""Late records and schema drift through the real deployments: windows extend, batches are quarantined, humans told."""

from datetime import date

import pandas as pd
import pytest
from pyiceberg.expressions import EqualTo

from admin import runs
from declarations.flights import landing
from lakeops.datasets.windows import Window, WindowColumn
from lakeops.iceberg import lake
from tests.e2e.conftest import (
    BRONZE_FLIGHTS,
    GOLD_DAILY_DELAYS,
    QUARANTINE_FLIGHTS,
    SILVER_FLIGHTS,
    window_filter,
)

pytestmark = pytest.mark.e2e

HELD_BACK = 5
QUARANTINED_WINDOW = WindowColumn("window")  # a quarantine row's window key


def rows_of(e2e, ref, window: Window):  # noqa: ANN001, ANN201
    return lake.read(lake.load(e2e.catalog, ref), window_filter(ref, window))


def test_late_records_extend_their_window_and_too_late_ones_are_quarantined_and_alerted(e2e) -> None:
    early, day, late_day = date(2013, 5, 1), date(2013, 5, 3), date(2013, 4, 20)
    early_rows = landing.day_rows(early)
    held = early_rows.tail(HELD_BACK)
    landing.drop_day_file(e2e.landing, early, early_rows.head(len(early_rows) - HELD_BACK).to_csv(index=False))
    e2e.follow(early, e2e.run_producer(early))
    assert len(rows_of(e2e, SILVER_FLIGHTS, Window(early))) == len(early_rows) - HELD_BACK

    too_late = landing.day_rows(late_day).head(2)  # 13 days late; the contract allows 3
    own = landing.day_rows(day)
    delivered = pd.concat([own, held, too_late])
    landing.drop_day_file(e2e.landing, day, delivered.to_csv(index=False))
    producer = e2e.run_producer(day)
    assert producer.state.is_completed(), producer.state.message
    e2e.follow(day, producer)

    bronze = lake.snapshot_of_run(lake.load(e2e.catalog, BRONZE_FLIGHTS), str(producer.id))
    refreshed = runs.wait_for_run(
        runs.builder(SILVER_FLIGHTS), runs.consumer_of(bronze.snapshot_id, Window(early), producer)
    )
    assert refreshed.state.is_completed(), refreshed.state.message
    silver = rows_of(e2e, SILVER_FLIGHTS, Window(early))
    assert len(silver) == len(early_rows)  # the window extended by the late records
    assert set(held["flight"]) <= set(silver["flight"])
    gold_run = runs.wait_for_run(
        runs.builder(GOLD_DAILY_DELAYS),
        lambda run: run.parameters["params"].get("window") == early.isoformat() and run.created > refreshed.created,
    )
    assert gold_run.state.is_completed()
    assert rows_of(e2e, GOLD_DAILY_DELAYS, Window(early))["flights"].sum() == len(early_rows)

    quarantined = lake.read(lake.load(e2e.catalog, QUARANTINE_FLIGHTS), QUARANTINED_WINDOW.filter(Window(day)))
    assert len(quarantined) == len(too_late)
    from_file = lake.read(lake.load(e2e.catalog, BRONZE_FLIGHTS), EqualTo("_source", f"{day}.csv"))
    assert len(from_file) + len(quarantined) == len(delivered)  # input = accepted + quarantined
    assert len(rows_of(e2e, BRONZE_FLIGHTS, Window(day))) == len(own)
    alert = e2e.receiver.wait_for(f"{day.isoformat()}: 2 record(s)", timeout=30)
    assert "more than 3 day(s) late" in alert.body and "prefect deployment run" in alert.body


def test_a_drifted_batch_is_quarantined_whole_and_alerted_while_other_days_keep_running(e2e) -> None:
    drifted, next_day = date(2013, 5, 10), date(2013, 5, 11)
    rows = landing.day_rows(drifted).rename(columns={"dep_delay": "departure_delay"})
    landing.drop_day_file(e2e.landing, drifted, rows.to_csv(index=False))

    failed = e2e.run_producer(drifted)

    assert failed.state.is_failed()
    assert "schema drift" in failed.state.message and "departure_delay" in failed.state.message
    assert rows_of(e2e, BRONZE_FLIGHTS, Window(drifted)).empty
    quarantined = lake.read(lake.load(e2e.catalog, QUARANTINE_FLIGHTS), QUARANTINED_WINDOW.filter(Window(drifted)))
    assert len(quarantined) == len(rows) + 1  # every line, header included
    alert = e2e.receiver.wait_for(f"{drifted.isoformat()}: schema drift", timeout=30)
    assert "departure_delay" in alert.body and "rename" in alert.body and "prefect deployment run" in alert.body
    assert len(e2e.receiver.about(f"{drifted.isoformat()}: schema drift")) == 1  # not repeated by the failure hook

    landing.drop_day_file(e2e.landing, next_day)
    trace = e2e.follow(next_day, e2e.run_producer(next_day))
    assert trace.last.state.is_completed()  # gold.daily_delays
