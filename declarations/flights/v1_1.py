"""Flights v1.1: a refactor of v1 with the same rules and, by design, the same output.

The code columns are cleaned in one loop and Gold uses the aggregation v2 shares
(`transforms.daily`). A released version's code is never edited: a refactor is a new version,
released blue-green; its release must come out identical.
"""

import pandas as pd

from declarations.flights.daily import daily_delays
from declarations.flights.schemas import NATURAL_KEY as FLIGHTS_NATURAL_KEY

__all__ = ["to_silver", "to_gold"]

CODE_COLUMNS = ("carrier", "origin", "dest")


def to_silver(bronze: pd.DataFrame) -> pd.DataFrame:
    """Clean one window of Bronze rows; the last ingested copy of each natural key wins."""
    cleaned = bronze.assign(
        **{column: bronze[column].str.strip().str.upper() for column in CODE_COLUMNS},
        tailnum=bronze["tailnum"].str.strip(),
        time_hour=pd.to_datetime(bronze["time_hour"], utc=True, format="ISO8601"),
        flight_date=pd.to_datetime(bronze[["year", "month", "day"]].astype("int64")).dt.date,
    )
    latest = cleaned.sort_values("_ingested_at", kind="stable").drop_duplicates(list(FLIGHTS_NATURAL_KEY), keep="last")
    return latest.sort_values(list(FLIGHTS_NATURAL_KEY)).reset_index(drop=True)


def to_gold(silver: pd.DataFrame) -> pd.DataFrame:
    """One row per (flight_date, origin); a flight with no departure time was cancelled."""
    return daily_delays(silver, cancelled=silver["dep_time"].isna())
