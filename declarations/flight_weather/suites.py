"""The analytics team's validation suite (Great Expectations, passed in: it is imported on first use)."""

from typing import Any

from declarations.flight_weather.schemas import KEY


def gold(gx: Any) -> list[Any]:
    """Gold flight_weather: one row per key, counts consistent."""
    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=list(KEY)),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in KEY],
        e.ExpectColumnValuesToBeBetween(column="flights", min_value=1),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="flights", column_B="cancelled", or_equal=True),
        e.ExpectColumnValuesToBeBetween(column="observations", min_value=0),
    ]
