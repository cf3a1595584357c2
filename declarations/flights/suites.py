"""The flights team's validation suites (Great Expectations, passed in: it is imported on first use)."""

from typing import Any

from declarations.flights.schemas import GOLD_KEY, NATURAL_KEY

MINUTES_PER_DAY = 1440


def silver(gx: Any) -> list[Any]:
    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=list(NATURAL_KEY)),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in (*NATURAL_KEY, "flight_date", "_batch_id")],
        e.ExpectColumnValuesToMatchRegex(column="carrier", regex=r"^[A-Z0-9]{2}$"),
        e.ExpectColumnValuesToMatchRegex(column="origin", regex=r"^[A-Z]{3}$"),
        e.ExpectColumnValuesToBeBetween(column="month", min_value=1, max_value=12),
        e.ExpectColumnValuesToBeBetween(column="sched_dep_time", min_value=0, max_value=2359),
        e.ExpectColumnValuesToBeBetween(column="dep_delay", min_value=-MINUTES_PER_DAY, max_value=2 * MINUTES_PER_DAY),
        e.ExpectColumnValuesToBeBetween(column="air_time", min_value=0, strict_min=True),
        e.ExpectColumnValuesToBeBetween(column="distance", min_value=0, strict_min=True),
    ]


def daily_delays(gx: Any) -> list[Any]:
    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=list(GOLD_KEY)),
        e.ExpectColumnValuesToBeBetween(column="flights", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="cancelled", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="on_time_arrivals", min_value=0),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="flights", column_B="cancelled", or_equal=True),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="flights", column_B="on_time_arrivals", or_equal=True),
    ]
