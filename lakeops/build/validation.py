"""Validation: a layer's declared Great Expectations suite run on a window's rows.

great_expectations takes about 4 s to import, so it is imported on first use, never at module load.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lakeops.datasets.declaration import Layer


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


Validator = Callable[[Layer, pa.Table], ValidationReport]  # a layer and the window's rows about to be committed

_COLUMN_FIELDS = ("column", "column_A", "column_B")


def suite_frame(rows: pa.Table, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The frame a suite sees of a window's Arrow rows: only `columns` (all when None), decimals as float64
    (GX's pandas engine compares numbers; Python Decimal objects would cost seconds a window)."""
    chosen = rows.select(list(columns)) if columns is not None else rows
    floats = [pc.cast(c, pa.float64()) if pa.types.is_decimal(c.type) else c for c in chosen.columns]
    return pa.Table.from_arrays(floats, names=chosen.column_names).to_pandas()


def suite_columns(expectations: list[Any]) -> tuple[str, ...] | None:
    """The columns a suite's expectations read, or None when one reads the table as a whole (its columns,
    its row count): a window of 750,000 rows converts to pandas only what its suite looks at."""
    names: list[str] = []
    for expectation in expectations:
        if getattr(expectation, "row_condition", None):
            return None  # a condition may read any column
        found = [str(v) for f in _COLUMN_FIELDS if (v := getattr(expectation, f, None))]
        found += [str(v) for v in getattr(expectation, "column_list", None) or []]
        if not found:
            return None
        names += [n for n in found if n not in names]
    return tuple(names)


def validate(layer: Layer, rows: pa.Table | pd.DataFrame) -> ValidationReport:
    """Run the layer's suite on a window's rows (a failure described with result format SUMMARY); raises
    ValueError for a layer with no suite. Arrow rows are seen as `suite_frame` gives them."""
    if layer.suite is None:
        raise ValueError(f"{layer.table} declares no validation suite")
    gx, batch_definition = gx_context()
    expectations = layer.suite(gx)
    frame = suite_frame(rows, suite_columns(expectations)) if isinstance(rows, pa.Table) else rows
    suite = gx.ExpectationSuite(name=f"lakeops.{layer.table}", expectations=expectations)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    # A pass needs no counts: BOOLEAN_ONLY takes about half the time. Only a failure is run again with SUMMARY,
    # for the rows each failed expectation hit and a sample of them.
    result = batch.validate(suite, result_format="BOOLEAN_ONLY")
    if not result.success:
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
