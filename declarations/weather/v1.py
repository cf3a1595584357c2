"""Weather v1: Bronze rows -> typed, cleaned, deduplicated Silver, dated by the local day."""

import pandas as pd

from declarations.weather.schemas import NATURAL_KEY


def to_silver(bronze: pd.DataFrame) -> pd.DataFrame:
    """Clean one window of Bronze rows; the last ingested copy of each (origin, UTC hour) wins."""
    cleaned = bronze.assign(
        origin=bronze["origin"].str.strip().str.upper(),
        time_hour=pd.to_datetime(bronze["time_hour"], utc=True, format="ISO8601"),
        # The window is the local day the source files the row under, not the UTC day of time_hour.
        weather_date=pd.to_datetime(bronze[["year", "month", "day"]].astype("int64")).dt.date,
    )
    # Deduplicate on the cleaned key: " jfk " and "JFK" are the same airport; a re-sent hour replaces the first.
    cleaned = cleaned.sort_values("_ingested_at", kind="stable")
    cleaned = cleaned.drop_duplicates(subset=list(NATURAL_KEY), keep="last")
    return cleaned.sort_values(list(NATURAL_KEY)).reset_index(drop=True)
