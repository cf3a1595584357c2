"""Flights v1: Bronze rows -> typed, cleaned, deduplicated Silver -> daily delays per origin."""

import pandas as pd

from declarations.flights.schemas import NATURAL_KEY as FLIGHTS_NATURAL_KEY

ON_TIME_MINUTES = 15


def to_silver(bronze: pd.DataFrame) -> pd.DataFrame:
    """Clean one window of Bronze rows; the last ingested copy of each natural key wins."""
    cleaned = bronze.assign(
        carrier=bronze["carrier"].str.strip().str.upper(),
        origin=bronze["origin"].str.strip().str.upper(),
        dest=bronze["dest"].str.strip().str.upper(),
        tailnum=bronze["tailnum"].str.strip(),
        time_hour=pd.to_datetime(bronze["time_hour"], utc=True, format="ISO8601"),
        flight_date=pd.to_datetime(bronze[["year", "month", "day"]].astype("int64")).dt.date,
    )
    # Deduplicate on the cleaned key: " ua " and "UA" are the same carrier.
    cleaned = cleaned.sort_values("_ingested_at", kind="stable")
    cleaned = cleaned.drop_duplicates(subset=list(FLIGHTS_NATURAL_KEY), keep="last")
    return cleaned.sort_values(list(FLIGHTS_NATURAL_KEY)).reset_index(drop=True)


def to_gold(silver: pd.DataFrame) -> pd.DataFrame:
    """One row per (flight_date, origin): scheduled, cancelled, mean delays, on-time arrivals."""
    rows = silver.assign(
        cancelled=silver["dep_time"].isna().astype("int64"),
        on_time=(silver["arr_delay"] <= ON_TIME_MINUTES).fillna(False).astype("int64"),
        dep_delay=silver["dep_delay"].astype("float64"),
        arr_delay=silver["arr_delay"].astype("float64"),
    )
    daily = rows.groupby(["flight_date", "origin"], as_index=False).agg(
        flights=("flight", "size"),
        cancelled=("cancelled", "sum"),
        mean_dep_delay=("dep_delay", "mean"),
        mean_arr_delay=("arr_delay", "mean"),
        on_time_arrivals=("on_time", "sum"),
    )
    return daily.sort_values(["flight_date", "origin"]).reset_index(drop=True)
