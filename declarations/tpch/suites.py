"""The tpch dataset's validation suites (Great Expectations, passed in: it is imported on first use).

Money reaches a suite as float64 (`lakeops.build.validation.suite_frame`): the ranges are TPC-H's own.
"""

from typing import Any

from declarations.tpch.schemas import GOLD_KEY, NATURAL_KEY


def silver(gx: Any) -> list[Any]:
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=list(NATURAL_KEY)),
        e.ExpectColumnValuesToBeBetween(column="l_quantity", min_value=1, max_value=50),
        e.ExpectColumnValuesToBeBetween(column="l_discount", min_value=0, max_value=0.1),
        e.ExpectColumnValuesToBeBetween(column="l_tax", min_value=0, max_value=0.08),
        e.ExpectColumnValuesToBeInSet(column="l_returnflag", value_set=["A", "N", "R"]),
        e.ExpectColumnValuesToBeInSet(column="l_linestatus", value_set=["F", "O"]),
    ]


def gold(gx: Any) -> list[Any]:
    e = gx.expectations
    return [
        e.ExpectCompoundColumnsToBeUnique(column_list=list(GOLD_KEY)),
        e.ExpectColumnValuesToBeBetween(column="count_order", min_value=1),
        e.ExpectColumnValuesToBeInSet(column="l_returnflag", value_set=["A", "N", "R"]),
    ]
