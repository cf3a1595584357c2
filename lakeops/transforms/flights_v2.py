"""Flights v2: a diverted flight (it departed but never arrived where scheduled) counts as cancelled.

v1 counted a diverted flight as operated, and left it out of the arrival-delay mean. Silver is
unchanged; only the Gold business rule moves.
"""

import pandas as pd

from lakeops.transforms.flights_v1 import ON_TIME_MINUTES, to_silver

__all__ = ["to_silver", "to_gold"]


def to_gold(silver: pd.DataFrame) -> pd.DataFrame:
    """One row per (flight_date, origin); `cancelled` counts flights that did not complete as scheduled."""
    diverted = silver["dep_time"].notna() & silver["arr_delay"].isna()
    rows = silver.assign(
        cancelled=(silver["dep_time"].isna() | diverted).astype("int64"),
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
