"""The Gold aggregation shared by the transform versions after v1: one row per (flight_date, origin)."""

import pandas as pd

ON_TIME_MINUTES = 15
GOLD_KEY = ["flight_date", "origin"]


def daily_delays(silver: pd.DataFrame, cancelled: pd.Series) -> pd.DataFrame:
    """Flights, cancelled (as the version's rule marks them), mean delays over non-null values, on-time arrivals."""
    rows = silver.assign(
        cancelled=cancelled.astype("int64"),
        on_time=(silver["arr_delay"] <= ON_TIME_MINUTES).fillna(False).astype("int64"),
        dep_delay=silver["dep_delay"].astype("float64"),
        arr_delay=silver["arr_delay"].astype("float64"),
    )
    daily = rows.groupby(GOLD_KEY, as_index=False).agg(
        flights=("flight", "size"),
        cancelled=("cancelled", "sum"),
        mean_dep_delay=("dep_delay", "mean"),
        mean_arr_delay=("arr_delay", "mean"),
        on_time_arrivals=("on_time", "sum"),
    )
    return daily.sort_values(GOLD_KEY).reset_index(drop=True)
