"""Stale fallback: an earlier Silver window carried forward, replaced when the real data lands; windows_in."""

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import pytest
from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops.build import fallback, pipeline
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake, tags
from lakeops.readiness import contracts, sla
from lakeops.readiness.ready import ReadySignal

from .conftest import DAY_A, DAY_B, assert_gold_matches, expected_gold
from .flights import (
    BRONZE,
    BRONZE_FLIGHTS,
    FLIGHTS,
    FLIGHTS_NATURAL_KEY,
    GOLD,
    GOLD_DAILY_DELAYS,
    REGISTRY,
    SILVER,
    SILVER_FLIGHTS,
    build_gold,
    build_silver,
    ingest_bronze,
)
from .versioning_helpers import RUN, dropper, on_day, open_lake, passing, rows_of

pytestmark = pytest.mark.filterwarnings("ignore:Delete operation did not match any records")

KEY = list(FLIGHTS_NATURAL_KEY)
VALIDATED = pipeline.Target(validate=passing)
DATE_COLUMNS = ["flight_date", "year", "month", "day", "time_hour"]
DAY_PARTS = ("year", "month", "day")  # the integer date parts Silver carries from the source
CONTRACT = contracts.of(REGISTRY, FLIGHTS)


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by everything but the date columns, so a carried window lines up with its source."""
    order = [c for c in KEY if c not in ("year", "month", "day")]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def provenance(catalog: Catalog, ref, snapshot_id: int):
    return lake.provenance_of(catalog.load_table(ref.identifier).snapshot_by_id(snapshot_id))


# --- carry_forward, pure ----------------------------------------------------------------------


def _silver_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flight_date": [date(2013, 1, 31)] * 2,
            "year": [2013, 2013],
            "month": [1, 1],
            "day": [31, 31],
            "carrier": ["UA", "AA"],
            "flight": [1, 2],
            "time_hour": pd.to_datetime(["2013-01-31T10:00:00Z", "2013-02-01T03:00:00Z"], utc=True),
            "dep_delay": [5.0, None],
        }
    )


def test_carry_forward_re_dates_every_row_across_a_month_end():
    source = _silver_rows()

    carried = fallback.carry_forward(
        source, SILVER.schema, DAY_PARTS, Window(date(2013, 1, 31)), Window(date(2013, 2, 2))
    )

    assert carried["flight_date"].tolist() == [date(2013, 2, 2)] * 2
    assert carried["year"].tolist() == [2013, 2013]
    assert carried["month"].tolist() == [2, 2]
    assert carried["day"].tolist() == [2, 2]
    assert carried["time_hour"].tolist() == [
        pd.Timestamp("2013-02-02T10:00:00Z"),
        pd.Timestamp("2013-02-03T03:00:00Z"),
    ]
    pd.testing.assert_frame_equal(carried.drop(columns=DATE_COLUMNS), source.drop(columns=DATE_COLUMNS))


def test_carry_forward_leaves_its_input_alone():
    source = _silver_rows()
    before = source.copy()

    fallback.carry_forward(source, SILVER.schema, DAY_PARTS, Window(date(2013, 1, 31)), Window(date(2013, 2, 1)))

    pd.testing.assert_frame_equal(source, before)


# --- a stale Silver window on a real catalog --------------------------------------------------


@dataclass(frozen=True)
class Carried:
    catalog: Catalog
    bronze_a: int
    batch_a: str
    silver_a: int
    gold_a: int
    stale: ReadySignal
    gold: ReadySignal


@pytest.fixture(scope="module")
def carried(tmp_path_factory) -> Carried:
    """Day A ingested and built (validated); day B late, so Silver B is day A carried forward, then Gold B."""
    home = tmp_path_factory.mktemp("fallback")
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    batch = drop(DAY_A)
    bronze_a = ingest_bronze(catalog, batch, RUN).snapshot_id
    silver_a = build_silver(catalog, Window(DAY_A), bronze_a, RUN, target=VALIDATED).snapshot_id
    gold_a = build_gold(catalog, Window(DAY_A), silver_a, RUN, target=VALIDATED).snapshot_id
    stale = build_silver(catalog, Window(DAY_B), bronze_a, RUN, stale=True, target=VALIDATED, carry_from=Window(DAY_A))
    gold = build_gold(catalog, Window(DAY_B), stale.snapshot_id, RUN, stale=True, target=VALIDATED)
    return Carried(catalog, bronze_a, batch.batch_id, silver_a, gold_a, stale, gold)


def test_the_stale_window_holds_the_earlier_windows_rows_re_dated(carried):
    silver = rows_of(carried.catalog, SILVER_FLIGHTS, carried.stale.snapshot_id)
    source, stale = by_key(on_day(silver, DAY_A)), by_key(on_day(silver, DAY_B))

    assert len(stale) == len(source) == len(landing.day_rows(DAY_A))
    assert carried.stale.row_count == len(stale)
    assert set(stale["flight_date"]) == {DAY_B}
    assert set(zip(stale["year"], stale["month"], stale["day"], strict=True)) == {(2013, 1, 3)}
    assert (stale["time_hour"] - source["time_hour"] == pd.Timedelta(days=1)).all()
    pd.testing.assert_frame_equal(stale.drop(columns=DATE_COLUMNS), source.drop(columns=DATE_COLUMNS))
    assert set(stale["_batch_id"]) == {carried.batch_a}
    assert set(stale["_bronze_snapshot_id"]) == {carried.bronze_a}


def test_the_stale_windows_natural_key_is_unique(carried):
    stale = on_day(rows_of(carried.catalog, SILVER_FLIGHTS, carried.stale.snapshot_id), DAY_B)

    assert not stale.duplicated(KEY).any()


def test_carrying_forward_leaves_the_source_window_as_it_was(carried):
    before = by_key(on_day(rows_of(carried.catalog, SILVER_FLIGHTS, carried.silver_a), DAY_A))
    after = by_key(on_day(rows_of(carried.catalog, SILVER_FLIGHTS, carried.stale.snapshot_id), DAY_A))

    pd.testing.assert_frame_equal(after, before)


def test_the_stale_commit_says_what_it_carried(carried):
    made_by = provenance(carried.catalog, SILVER_FLIGHTS, carried.stale.snapshot_id)

    assert carried.stale.stale is True
    assert carried.stale.window == DAY_B.isoformat()
    assert made_by.stale is True
    assert made_by.window == DAY_B.isoformat()
    assert made_by.carried_from == DAY_A.isoformat()
    assert dict(made_by.inputs) == {BRONZE_FLIGHTS.identifier: carried.bronze_a}


def test_a_stale_commit_does_not_move_last_known_good(carried):
    silver = lake.load(carried.catalog, SILVER_FLIGHTS)
    gold = lake.load(carried.catalog, GOLD_DAILY_DELAYS)

    assert tags.last_known_good(silver).snapshot_id == carried.silver_a
    assert tags.last_known_good(gold).snapshot_id == carried.gold_a


def test_gold_built_on_the_stale_silver_is_stale(carried):
    made_by = provenance(carried.catalog, GOLD_DAILY_DELAYS, carried.gold.snapshot_id)
    gold = on_day(rows_of(carried.catalog, GOLD_DAILY_DELAYS, carried.gold.snapshot_id), DAY_B)

    assert carried.gold.stale is True
    assert made_by.stale is True
    assert dict(made_by.inputs) == {SILVER_FLIGHTS.identifier: carried.stale.snapshot_id}
    assert_gold_matches(gold, expected_gold(landing.day_rows(DAY_A)))


def test_carrying_forward_without_stale_is_refused(carried):
    before = [s.snapshot_id for s in lake.load(carried.catalog, SILVER_FLIGHTS).snapshots()]

    with pytest.raises(ValueError, match="stale=True"):
        build_silver(carried.catalog, Window(DAY_B), carried.bronze_a, RUN, carry_from=Window(DAY_A))

    assert [s.snapshot_id for s in lake.load(carried.catalog, SILVER_FLIGHTS).snapshots()] == before


# --- the real data arrives --------------------------------------------------------------------


def test_the_real_data_replaces_the_carried_rows(catalog, drop_day):
    batch_a = drop_day(DAY_A)
    bronze_a = ingest_bronze(catalog, batch_a, RUN).snapshot_id
    build_silver(catalog, Window(DAY_A), bronze_a, RUN)
    stale = build_silver(catalog, Window(DAY_B), bronze_a, RUN, stale=True, carry_from=Window(DAY_A))
    source_a = by_key(on_day(rows_of(catalog, SILVER_FLIGHTS), DAY_A))

    batch_b = drop_day(DAY_B)
    bronze_b = ingest_bronze(catalog, batch_b, RUN).snapshot_id
    fresh = build_silver(catalog, Window(DAY_B), bronze_b, RUN)

    silver = rows_of(catalog, SILVER_FLIGHTS)
    real = on_day(silver, DAY_B)
    assert len(real) == len(landing.day_rows(DAY_B)) == fresh.row_count
    assert len(real) != stale.row_count  # the two days differ, so a leftover row would show
    assert set(real["_batch_id"]) == {batch_b.batch_id}
    assert set(real["_bronze_snapshot_id"]) == {bronze_b}
    assert not real.duplicated(KEY).any()
    expected = landing.day_rows(DAY_B)
    assert sorted(zip(real["carrier"], real["flight"], real["sched_dep_time"], strict=True)) == sorted(
        zip(expected["carrier"].str.strip().str.upper(), expected["flight"], expected["sched_dep_time"], strict=True)
    )
    pd.testing.assert_frame_equal(by_key(on_day(silver, DAY_A)), source_a)
    assert len(silver) == len(landing.day_rows(DAY_A)) + len(landing.day_rows(DAY_B))
    made_by = provenance(catalog, SILVER_FLIGHTS, fresh.snapshot_id)
    assert made_by.stale is False and made_by.carried_from is None
    assert fresh.stale is False


def test_the_deadline_handlers_decision_on_a_real_lake_carries_the_day_before(catalog, drop_day):
    """decide_fallback over lake.windows_in of Bronze's last-known-good, then the stale build it orders."""
    bronze_a = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    bronze = lake.load(catalog, BRONZE_FLIGHTS)
    good = tags.last_known_good(bronze)
    assert good is not None and good.snapshot_id == bronze_a

    present = {w.day for w in lake.windows_in(bronze, BRONZE.window, good.snapshot_id)}  # as the handler reads it
    decision = sla.decide_fallback(CONTRACT, Window(DAY_B), good.snapshot_id, present)

    assert decision == sla.Fallback(bronze_a, DAY_A)
    built = build_silver(
        catalog, Window(DAY_B), decision.snapshot_id, RUN, stale=True, carry_from=Window(decision.source_window)
    )
    assert built.row_count == len(landing.day_rows(DAY_A))
    too_late = sla.decide_fallback(CONTRACT, Window(DAY_A + timedelta(days=3)), good.snapshot_id, {DAY_A})
    assert isinstance(too_late, sla.NoFallback)


# --- windows_in -------------------------------------------------------------------------------


def test_windows_in_of_empty_tables_is_empty(catalog):
    for layer in (BRONZE, SILVER, GOLD):
        assert lake.windows_in(lake.load(catalog, layer.table), layer.window) == set()


def test_windows_in_bronze_and_silver_now_and_as_of_an_older_snapshot(carried):
    bronze = lake.load(carried.catalog, BRONZE_FLIGHTS)
    silver = lake.load(carried.catalog, SILVER_FLIGHTS)

    assert lake.windows_in(bronze, BRONZE.window) == {Window(DAY_A)}
    assert lake.windows_in(bronze, BRONZE.window, carried.bronze_a) == {Window(DAY_A)}
    assert lake.windows_in(silver, SILVER.window) == {Window(DAY_A), Window(DAY_B)}
    assert lake.windows_in(silver, SILVER.window, carried.silver_a) == {Window(DAY_A)}
    assert lake.windows_in(silver, SILVER.window, carried.stale.snapshot_id) == {Window(DAY_A), Window(DAY_B)}
    assert lake.windows_in(lake.load(carried.catalog, GOLD_DAILY_DELAYS), GOLD.window) == {
        Window(DAY_A),
        Window(DAY_B),
    }
    windows = lake.windows_in(silver, SILVER.window) | lake.windows_in(bronze, BRONZE.window)
    assert all(type(w) is Window and w.grain == "day" and type(w.day) is date for w in windows)


def test_windows_in_bronze_as_of_a_snapshot_before_a_day_landed(catalog, drop_day):
    first = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    ingest_bronze(catalog, drop_day(DAY_B), RUN)
    bronze = lake.load(catalog, BRONZE_FLIGHTS)

    assert lake.windows_in(bronze, BRONZE.window) == {Window(DAY_A), Window(DAY_B)}
    assert lake.windows_in(bronze, BRONZE.window, first) == {Window(DAY_A)}
