"""Validation suites (Great Expectations) that a window's output must pass before it is committed.

great_expectations takes about 4 s to import, so it is imported on first use, never at module load.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

from lakeops.datasets.names import FLIGHTS_NATURAL_KEY, GOLD_DAILY_DELAYS, SILVER_FLIGHTS, TableRef

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one suite on one frame: which expectations failed and how many rows they hit."""

    suite: str
    rows: int
    evaluated: int
    failures: tuple[str, ...]

    @property
    def success(self) -> bool:
        return not self.failures


Validator = Callable[[TableRef, pd.DataFrame], ValidationReport]


def _silver_expectations(gx: Any) -> list[Any]:
    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=list(FLIGHTS_NATURAL_KEY)),
        *[e.ExpectColumnValuesToNotBeNull(column=c) for c in (*FLIGHTS_NATURAL_KEY, "flight_date", "_batch_id")],
        e.ExpectColumnValuesToMatchRegex(column="carrier", regex=r"^[A-Z0-9]{2}$"),
        e.ExpectColumnValuesToMatchRegex(column="origin", regex=r"^[A-Z]{3}$"),
        e.ExpectColumnValuesToBeBetween(column="month", min_value=1, max_value=12),
        e.ExpectColumnValuesToBeBetween(column="sched_dep_time", min_value=0, max_value=2359),
        e.ExpectColumnValuesToBeBetween(column="dep_delay", min_value=-MINUTES_PER_DAY, max_value=2 * MINUTES_PER_DAY),
        e.ExpectColumnValuesToBeBetween(column="air_time", min_value=0, strict_min=True),
        e.ExpectColumnValuesToBeBetween(column="distance", min_value=0, strict_min=True),
    ]


def _gold_expectations(gx: Any) -> list[Any]:
    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(min_value=1),
        e.ExpectCompoundColumnsToBeUnique(column_list=["flight_date", "origin"]),
        e.ExpectColumnValuesToBeBetween(column="flights", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="cancelled", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="on_time_arrivals", min_value=0),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="flights", column_B="cancelled", or_equal=True),
        e.ExpectColumnPairValuesAToBeGreaterThanB(column_A="flights", column_B="on_time_arrivals", or_equal=True),
    ]


SUITES: dict[TableRef, Callable[[Any], list[Any]]] = {
    SILVER_FLIGHTS: _silver_expectations,
    GOLD_DAILY_DELAYS: _gold_expectations,
}


def validate(ref: TableRef, frame: pd.DataFrame) -> ValidationReport:
    """Run `ref`'s suite on `frame` (result format SUMMARY); raises ValueError for a table with no suite."""
    if ref not in SUITES:
        raise ValueError(f"no validation suite for {ref}; suites exist for {sorted(map(str, SUITES))}")
    gx, batch_definition = gx_context()
    suite = gx.ExpectationSuite(name=f"lakeops.{ref}", expectations=SUITES[ref](gx))
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format="SUMMARY")
    failures = tuple(describe(r) for r in result.results if not r.success)
    return ValidationReport(suite.name, len(frame), len(result.results), failures)


def describe(result: Any) -> str:
    """One failed expectation in words: its type and arguments, the rows it hit or the value observed."""
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    outcome = result.result or {}
    unexpected = outcome.get("unexpected_count")
    sample = outcome.get("partial_unexpected_list", [])[:3]
    hit = f": {unexpected} rows, e.g. {sample}" if unexpected else ""
    if not hit and "observed_value" in outcome:
        observed = outcome["observed_value"]
        hit = f": observed {observed.item() if hasattr(observed, 'item') else observed!r}"
    return f"{config.type}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}){hit}"


@cache
def gx_context() -> tuple[Any, Any]:
    """An ephemeral GX context with one pandas dataframe asset, built once per process."""
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("lakeops").add_dataframe_asset("window")
    return gx, asset.add_batch_definition_whole_dataframe("whole window")
