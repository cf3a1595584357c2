"""The weather team's validation suite (Great Expectations, passed in: it is imported on first use)."""

from typing import Any

from declarations.weather.schemas import NATURAL_KEY

MAX_HUMIDITY = 100  # relative humidity, percent


def silver(gx: Any) -> list[Any]:
    """Silver weather: the key unique and filled, codes and physical ranges plausible."""
    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=list(NATURAL_KEY)),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in (*NATURAL_KEY, "weather_date", "hour", "_batch_id")],
        e.ExpectColumnValuesToMatchRegex(column="origin", regex=r"^[A-Z]{3}$"),
        e.ExpectColumnValuesToBeBetween(column="hour", min_value=0, max_value=23),
        e.ExpectColumnValuesToBeBetween(column="humid", min_value=0, max_value=MAX_HUMIDITY),
        e.ExpectColumnValuesToBeBetween(column="visib", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="precip", min_value=0),
    ]
