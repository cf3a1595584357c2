"""The release suite: green's output checked with expectations built from blue's statistics (GX).

Row count within a tolerance of blue's; each column's null rate at most blue's plus a tolerance;
numeric means and quartiles within a fraction of blue's; low-cardinality text columns holding no
value blue never had; plus the table's own validation suite. Result format SUMMARY.
"""

from typing import Any

import pandas as pd

from lakeops.build import validation
from lakeops.build.validation import ValidationReport
from lakeops.datasets.declaration import Layer
from lakeops.release.comparison import Thresholds

QUARTILES = [0.25, 0.5, 0.75]
MAX_CATEGORIES = 50
_EPSILON = 1e-9


def check(layer: Layer, blue: pd.DataFrame, green: pd.DataFrame, thresholds: Thresholds) -> ValidationReport:
    """Run the suite parameterised with blue's statistics on green, plus the layer's own suite."""
    gx, batch_definition = validation.gx_context()
    expectations = expectations_from(gx, layer, blue, thresholds) + (layer.suite(gx) if layer.suite else [])
    suite = gx.ExpectationSuite(name=f"lakeops.release.{layer.table}", expectations=expectations)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": green})
    result = batch.validate(suite, result_format="SUMMARY")
    failures = tuple(validation.describe(r) for r in result.results if not r.success)
    return ValidationReport(suite.name, len(green), len(result.results), failures)


def expectations_from(gx: Any, layer: Layer, blue: pd.DataFrame, thresholds: Thresholds) -> list[Any]:
    """The blue-parameterised expectations (without the table's own suite)."""
    e = gx.expectations
    rows = len(blue)
    found: list[Any] = [
        e.ExpectTableRowCountToBeBetween(
            min_value=int(rows * (1 - thresholds.row_count_tolerance)),
            max_value=int(rows * (1 + thresholds.row_count_tolerance) + 0.999),
        )
    ]
    for column in blue.columns:
        null_rate = float(blue[column].isna().mean()) if rows else 0.0
        if null_rate + thresholds.null_rate_tolerance < 1:
            mostly = round(1 - null_rate - thresholds.null_rate_tolerance, 6)
            found.append(e.ExpectColumnValuesToNotBeNull(column=column, mostly=mostly))
    for column in _compared_numeric(layer, blue):
        found += _distribution(e, column, blue[column].dropna().astype("float64"), thresholds.mean_tolerance)
    for column in _categories(layer, blue):
        values = sorted(blue[column].dropna().unique().tolist())
        found.append(e.ExpectColumnDistinctValuesToBeInSet(column=column, value_set=values))
    return found


def _distribution(e: Any, column: str, values: pd.Series, tolerance: float) -> list[Any]:
    if values.empty:
        return []
    mean = float(values.mean())
    # GX computes quantiles on pandas with interpolation "nearest": blue's must be computed the same way.
    quartiles = [float(q) for q in values.quantile(QUARTILES, interpolation="nearest")]
    spread = quartiles[2] - quartiles[0]
    slack = tolerance * abs(mean) + _EPSILON
    ranges = [
        [q - tolerance * (abs(q) + spread) - _EPSILON, q + tolerance * (abs(q) + spread) + _EPSILON] for q in quartiles
    ]
    return [
        e.ExpectColumnMeanToBeBetween(column=column, min_value=mean - slack, max_value=mean + slack),
        e.ExpectColumnQuantileValuesToBeBetween(
            column=column, quantile_ranges={"quantiles": QUARTILES, "value_ranges": ranges}
        ),
    ]


def _compared_numeric(layer: Layer, frame: pd.DataFrame) -> list[str]:
    """Numeric measure columns: not the natural key, not lineage (`_...`)."""
    key = set(layer.key)
    return [
        c
        for c in frame.columns
        if c not in key
        and not c.startswith("_")
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _categories(layer: Layer, frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if not c.startswith("_")
        and (pd.api.types.is_string_dtype(frame[c]) or frame[c].dtype == object)
        and frame[c].nunique() <= MAX_CATEGORIES
    ]
