"""Flights v2 (declarations.flights.v2): a diverted flight (departed, no arrival delay) counts as cancelled."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from declarations.flights import landing
from declarations.flights import v1 as flights_v1
from declarations.flights import v2 as flights_v2
from lakeops.datasets.windows import Window
from lakeops.ingest import batches

from .conftest import DAY_A, assert_gold_matches, expected_gold
from .flights import GOLD, GOLD_DAILY_DELAYS, SILVER, build_gold, build_silver, ingest_bronze, parse
from .versioning_helpers import RUN, expected_gold_v2, on_day, rows_of


def diverted(source: pd.DataFrame) -> pd.Series:
    return source["dep_time"].notna() & source["arr_delay"].isna()


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    rows = landing.day_rows(DAY_A)
    assert diverted(rows).sum() == 7, "DAY_A is chosen for its diverted flights"
    return rows


@pytest.fixture
def silver(drop_day) -> pd.DataFrame:
    batch = drop_day(DAY_A)
    return flights_v1.to_silver(batches.with_lineage(parse(batch), batch, datetime.now(UTC)))


def test_v2_counts_diverted_flights_as_cancelled(silver, source):
    gold = flights_v2.to_gold(silver)

    assert set(gold["flight_date"]) == {DAY_A}
    assert_gold_matches(gold.drop(columns="flight_date"), expected_gold_v2(source))


def test_v1_does_not_and_the_difference_is_exactly_the_diversions(silver, source):
    v1 = flights_v1.to_gold(silver).set_index("origin")
    v2 = flights_v2.to_gold(silver).set_index("origin")

    assert_gold_matches(v1.reset_index().drop(columns="flight_date"), expected_gold(source))
    per_origin = source[diverted(source)].groupby("origin").size().reindex(v1.index, fill_value=0)
    assert (v2["cancelled"] - v1["cancelled"]).tolist() == per_origin.tolist()
    assert per_origin.sum() == 7
    unchanged = ["flight_date", "flights", "mean_dep_delay", "mean_arr_delay", "on_time_arrivals"]
    pd.testing.assert_frame_equal(v2[unchanged], v1[unchanged])


def test_v2_silver_is_v1_silver(silver, drop_day):
    batch = drop_day(DAY_A)
    bronze = batches.with_lineage(parse(batch), batch, datetime.now(UTC))

    assert SILVER.transform("v2").__wrapped__ is flights_v1.to_silver
    assert GOLD.transform("v2").__wrapped__ is flights_v2.to_gold
    pd.testing.assert_frame_equal(flights_v2.to_silver(bronze), flights_v1.to_silver(bronze))


def test_build_gold_with_version_v2_commits_the_v2_numbers(catalog, drop_day, source):
    bronze = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    silver = build_silver(catalog, Window(DAY_A), bronze.snapshot_id, RUN, version="v2")

    signal = build_gold(catalog, Window(DAY_A), silver.snapshot_id, RUN, version="v2")

    gold = on_day(rows_of(catalog, GOLD_DAILY_DELAYS), DAY_A)
    assert_gold_matches(gold.drop(columns=["flight_date", "_batch_id"]), expected_gold_v2(source))
    summary = catalog.load_table(GOLD_DAILY_DELAYS.identifier).snapshot_by_id(signal.snapshot_id).summary
    assert summary.additional_properties["lakeops.transform-version"] == "v2"


def test_an_unknown_version_is_refused_naming_the_known_ones():
    for layer in (SILVER, GOLD):
        with pytest.raises(ValueError, match=r"unknown transform version 'v3'; known: \['v1', 'v1.1', 'v2'\]"):
            layer.transform("v3")
