"""lakeops.validation with real Great Expectations suites (imported once: a few seconds for this module)."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from declarations.flights import v1
from lakeops.build import pipeline, validation
from lakeops.datasets.windows import Window
from lakeops.errors import ValidationFailed
from lakeops.iceberg import tags
from lakeops.ingest import batches

from .conftest import DAY_A, day_text, edit_cell
from .flights import BRONZE, GOLD, SILVER, SILVER_FLIGHTS, build_silver, ingest_bronze, parse
from .versioning_helpers import RUN, snapshot_ids


def silver_frame(batch: batches.RawBatch) -> pd.DataFrame:
    """What build_silver would validate for the batch's window."""
    bronze = batches.with_lineage(parse(batch), batch, datetime.now(UTC))
    return v1.to_silver(bronze).assign(_bronze_snapshot_id=1)


def test_a_valid_silver_window_passes_every_check(drop_day):
    frame = silver_frame(drop_day(DAY_A))

    report = validation.validate(SILVER, frame)

    assert report.success, report.failures
    assert report.failures == ()
    assert report.rows == len(frame) == 943
    assert report.evaluated == len(SILVER.suite(validation.gx_context()[0])) >= 10
    assert report.suite == "lakeops.silver.flights"


def test_a_broken_carrier_and_a_negative_air_time_fail_naming_both_checks(drop_day):
    frame = silver_frame(drop_day(DAY_A))
    frame.loc[3, "carrier"] = "U$"
    frame.loc[7, "air_time"] = -5.0

    report = validation.validate(SILVER, frame)

    assert not report.success
    assert len(report.failures) == 2, report.failures
    carrier = next(f for f in report.failures if "column='carrier'" in f)
    air_time = next(f for f in report.failures if "column='air_time'" in f)
    assert carrier.startswith("expect_column_values_to_match_regex(") and "1 rows" in carrier and "U$" in carrier
    assert air_time.startswith("expect_column_values_to_be_between(") and "1 rows" in air_time and "-5.0" in air_time


def test_a_gold_frame_with_more_cancelled_than_flights_fails(drop_day):
    frame = v1.to_gold(silver_frame(drop_day(DAY_A))).assign(_batch_id="b")
    assert validation.validate(GOLD, frame).success
    frame.loc[0, "cancelled"] = frame.loc[0, "flights"] + 1

    report = validation.validate(GOLD, frame)

    assert len(report.failures) == 1, report.failures
    (failure,) = report.failures
    assert failure.startswith("expect_column_pair_values_a_to_be_greater_than_b(")
    assert "column_A='flights'" in failure and "column_B='cancelled'" in failure


def test_the_real_gate_in_the_pipeline_rejects_a_broken_window_and_passes_a_good_one(catalog, drop_day):
    gate = pipeline.Target(validate=validation.validate)
    broken = ingest_bronze(catalog, drop_day(DAY_A, edit_cell(day_text(DAY_A), 2, "carrier", "UAX")), RUN)

    with pytest.raises(ValidationFailed, match=r"silver\.flights window 2013-01-02 failed 1 of \d+ checks") as caught:
        build_silver(catalog, Window(DAY_A), broken.snapshot_id, RUN, target=gate)

    assert "column='carrier'" in caught.value.failures[0] and "UAX" in caught.value.failures[0]
    assert snapshot_ids(catalog, SILVER_FLIGHTS) == []
    fixed = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    built = build_silver(catalog, Window(DAY_A), fixed.snapshot_id, RUN, target=gate)
    silver = catalog.load_table(SILVER_FLIGHTS.identifier)
    assert tags.last_known_good(silver).snapshot_id == built.snapshot_id
    assert silver.snapshot_by_id(built.snapshot_id).summary.additional_properties["lakeops.validated"] == "true"


def test_a_layer_without_a_suite_is_refused():
    assert BRONZE.suite is None  # Bronze's validation is parsing
    with pytest.raises(ValueError, match=r"bronze\.flights declares no validation suite"):
        validation.validate(BRONZE, pd.DataFrame({"x": [1]}))


def test_arrow_rows_are_validated_on_the_columns_the_suite_names_and_fail_alike(drop_day):
    import pyarrow as pa

    frame = silver_frame(drop_day(DAY_A))
    gx, _ = validation.gx_context()
    expectations = SILVER.suite(gx)
    columns = validation.suite_columns(expectations)
    named = {getattr(e, "column", None) for e in expectations} - {None}
    if columns is not None:
        assert named <= set(columns) and set(columns) <= set(frame.columns)
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    assert validation.validate(SILVER, rows).success

    broken = frame.copy()
    broken.loc[broken.index[2], "air_time"] = -12.0
    from_arrow = validation.validate(SILVER, pa.Table.from_pandas(broken, preserve_index=False))
    from_pandas = validation.validate(SILVER, broken)
    assert not from_arrow.success and len(from_arrow.failures) == len(from_pandas.failures) == 1
    # The same expectation, the same row hit (the sample prints as the frame's dtype gives it).
    assert from_arrow.failures[0].split(", e.g.")[0] == from_pandas.failures[0].split(", e.g.")[0]
    assert "air_time" in from_arrow.failures[0] and "1 rows" in from_arrow.failures[0]


def test_a_suite_with_a_table_expectation_sees_every_column():
    gx, _ = validation.gx_context()
    expectations = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="a"),
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
    ]

    assert validation.suite_columns(expectations) is None
    assert validation.suite_columns(expectations[:1]) == ("a",)


def test_decimals_reach_a_suite_as_floats():
    import decimal

    import pyarrow as pa

    rows = pa.table({"price": pa.array([decimal.Decimal("1.25")], pa.decimal128(15, 2)), "x": [1]})

    frame = validation.suite_frame(rows, ("price",))
    assert list(frame.columns) == ["price"] and frame["price"].dtype == "float64" and frame["price"][0] == 1.25
