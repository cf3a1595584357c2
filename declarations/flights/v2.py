"""Flights v2: a diverted flight (it departed but never arrived where scheduled) counts as cancelled.

v1 counted a diverted flight as operated, and left it out of the arrival-delay mean. Silver is
unchanged; only the Gold business rule moves.
"""

import pandas as pd

from declarations.flights.daily import daily_delays
from declarations.flights.v1 import to_silver

__all__ = ["to_silver", "to_gold"]


def to_gold(silver: pd.DataFrame) -> pd.DataFrame:
    """One row per (flight_date, origin); `cancelled` counts flights that did not complete as scheduled."""
    diverted = silver["dep_time"].notna() & silver["arr_delay"].isna()
    return daily_delays(silver, cancelled=silver["dep_time"].isna() | diverted)
