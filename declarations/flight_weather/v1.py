"""flight_weather v1: daily flights per origin joined with that day's weather at the origin."""

import pandas as pd

from declarations.flight_weather.schemas import KEY


def to_gold(flights_silver: pd.DataFrame, weather_silver: pd.DataFrame) -> pd.DataFrame:
    """One row per (flight_date, origin) with flights: counts, mean delays and the day's weather there.

    `_batch_id` is left to the core, which names the batches of both inputs.
    """
    flights = flights_silver.assign(
        cancelled=flights_silver["dep_time"].isna().astype("int64"),
        dep_delay=flights_silver["dep_delay"].astype("float64"),
        arr_delay=flights_silver["arr_delay"].astype("float64"),
    )
    daily = flights.groupby(list(KEY), as_index=False).agg(
        flights=("flight", "size"),
        cancelled=("cancelled", "sum"),
        mean_dep_delay=("dep_delay", "mean"),  # pandas means skip nulls: over the non-null delays
        mean_arr_delay=("arr_delay", "mean"),
    )
    # Weather is filed by local day, as flights are: the same calendar day joins.
    weather = weather_silver.rename(columns={"weather_date": "flight_date"})
    weather = weather.assign(
        **{c: weather[c].astype("float64") for c in ("visib", "precip", "wind_speed", "wind_gust")}
    )
    hourly = weather.groupby(list(KEY), as_index=False).agg(
        mean_visib=("visib", "mean"),
        total_precip=("precip", "sum"),
        mean_wind_speed=("wind_speed", "mean"),
        max_wind_gust=("wind_gust", "max"),  # NaN when no hour reported a gust
        observations=("hour", "size"),
    )
    # Left join: a row per origin that had flights; an origin with no weather that day keeps nulls.
    joined = daily.merge(hourly, on=list(KEY), how="left", validate="one_to_one")
    joined["observations"] = joined["observations"].fillna(0).astype("int64")
    return joined.sort_values(list(KEY)).reset_index(drop=True)
