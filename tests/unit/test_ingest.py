"""lakeops.ingest: parsing day files, naming the file, column and line of the first problem."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from declarations.flights import landing
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.ingest import batches

from .conftest import DAY_A, DAY_B, day_text, edit_cell
from .flights import parse

INT_COLUMNS = ["year", "month", "day", "dep_time", "sched_dep_time", "arr_time", "sched_arr_time"]
INT_COLUMNS += ["flight", "distance", "hour", "minute"]
FLOAT_COLUMNS = ["dep_delay", "arr_delay", "air_time"]
STR_COLUMNS = ["carrier", "tailnum", "origin", "dest", "time_hour"]


def test_a_real_day_file_parses_to_every_row_with_typed_columns(drop_day):
    source = landing.day_rows(DAY_A)

    parsed = parse(drop_day(DAY_A))

    assert len(parsed) == len(source)
    assert sorted(parsed.columns) == sorted(INT_COLUMNS + FLOAT_COLUMNS + STR_COLUMNS)
    for column in INT_COLUMNS:
        assert pd.api.types.is_integer_dtype(parsed[column]), column
    for column in FLOAT_COLUMNS:
        assert pd.api.types.is_float_dtype(parsed[column]), column
    for column in STR_COLUMNS:
        assert pd.api.types.is_string_dtype(parsed[column]), column


def test_a_real_day_file_keeps_values_and_nulls(drop_day):
    source = landing.day_rows(DAY_A)

    parsed = parse(drop_day(DAY_A))

    for column in INT_COLUMNS + FLOAT_COLUMNS:
        np.testing.assert_array_equal(
            parsed[column].to_numpy(dtype="float64", na_value=np.nan),
            source[column].to_numpy(dtype="float64", na_value=np.nan),
            err_msg=column,
        )
    for column in STR_COLUMNS:
        assert parsed[column].isna().tolist() == source[column].isna().tolist(), column
        assert parsed[column].dropna().tolist() == source[column].dropna().tolist(), column


def _drop_column(text: str, column: str) -> str:
    rows = [line.split(",") for line in text.splitlines()]
    at = rows[0].index(column)
    return "\n".join(",".join(r[:at] + r[at + 1 :]) for r in rows) + "\n"


def _insert_blank_line(text: str, before_line: int) -> str:
    lines = text.splitlines()
    return "\n".join(lines[: before_line - 1] + [""] + lines[before_line - 1 :]) + "\n"


GOOD = day_text(DAY_A)

# (case, file text, column named, line named); lines count from 1 and the header is line 1.
# A missing column and a null in a key column are schema drift (SchemaDrifted, a MalformedBatch).
MALFORMED = [
    ("unparseable float", edit_cell(GOOD, 3, "dep_delay", "abc"), "dep_delay", 4),
    ("non-integer in int column", edit_cell(GOOD, 5, "sched_dep_time", "515.5"), "sched_dep_time", 6),
    ("text in int column", edit_cell(GOOD, 1, "flight", "12x"), "flight", 2),
    ("text in float column, late row", edit_cell(GOOD, 900, "air_time", "n/a"), "air_time", 901),
    ("missing column", _drop_column(GOOD, "carrier"), "carrier", 1),
    ("row of another day", edit_cell(GOOD, 2, "day", "3"), "day", 3),
    ("row of another month", edit_cell(GOOD, 7, "month", "2"), "month", 8),
    ("row of another year", edit_cell(GOOD, 4, "year", "2014"), "year", 5),
    ("row without a year", edit_cell(GOOD, 6, "year", ""), "year", 7),
    ("whole file of another day", day_text(DAY_B), "day", 2),
    ("blank line above the bad row", _insert_blank_line(edit_cell(GOOD, 3, "dep_delay", "abc"), 2), "dep_delay", 5),
]
CASE_IDS = [c[0] for c in MALFORMED]


@pytest.mark.parametrize(("text", "column", "line"), [c[1:] for c in MALFORMED], ids=CASE_IDS)
def test_malformed_rows_name_the_file_the_column_and_the_line(drop_day, text, column, line):
    batch = drop_day(DAY_A, text)

    with pytest.raises(MalformedBatch) as caught:
        parse(batch)

    error = caught.value
    assert (error.source, error.column, error.row) == (batch.source, column, line)
    assert batch.source in str(error)
    assert repr(column) in str(error)
    assert f"row {line}" in str(error)


@pytest.mark.parametrize(
    ("text", "kind", "column", "line"),
    [
        (_drop_column(GOOD, "carrier"), "removed", "carrier", 1),
        (edit_cell(GOOD, 6, "year", ""), "nullability_change", "year", 7),
    ],
    ids=["missing column", "row without a year"],
)
def test_drift_is_found_before_values_are_typed_and_named_like_any_malformed_batch(drop_day, text, kind, column, line):
    batch = drop_day(DAY_A, text)

    with pytest.raises(SchemaDrifted) as caught:
        parse(batch)

    error = caught.value
    assert [(c.kind, c.column) for c in error.drift.changes] == [(kind, column)]
    assert (error.source, error.column, error.row) == (batch.source, column, line)
    assert str(error).startswith(f"{batch.source}: column {column!r}, row {line}: schema drift")


@pytest.mark.parametrize(("column", "bad"), [("dep_delay", "abc"), ("sched_dep_time", "515.5"), ("month", "2")])
def test_the_line_named_is_the_line_holding_the_bad_value(drop_day, column, bad):
    text = edit_cell(GOOD, 10, column, bad)

    with pytest.raises(MalformedBatch) as caught:
        parse(drop_day(DAY_A, text))

    offending = text.splitlines()[caught.value.row - 1].split(",")
    header = text.splitlines()[0].split(",")
    assert offending[header.index(column)] == bad


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("\n  \n", "empty"),
        (GOOD.splitlines()[0] + "\n", "no data rows"),
        (edit_cell(GOOD, 5, "time_hour", "2013-01-02T10:00:00Z,extra"), "row 6: 20 fields where the header has 19"),
    ],
    ids=["empty", "blank lines only", "header only", "more cells than the header"],
)
def test_files_without_usable_rows_are_malformed_and_named(drop_day, text, reason):
    batch = drop_day(DAY_A, text)

    with pytest.raises(MalformedBatch) as caught:
        parse(batch)

    assert caught.value.source == batch.source
    assert str(caught.value).startswith(batch.source)
    assert reason in str(caught.value)


def test_a_truncated_row_is_malformed(drop_day):
    """A row with 4 of 19 cells must not reach Bronze as a flight with a null carrier and origin."""
    lines = GOOD.splitlines()
    lines[3] = ",".join(lines[3].split(",")[:4])

    with pytest.raises(MalformedBatch) as caught:
        parse(drop_day(DAY_A, "\n".join(lines) + "\n"))

    assert caught.value.row == 4


def test_read_raw_of_a_missing_file_names_it(tmp_path: Path):
    missing = tmp_path / "flights" / "2013-01-02.csv"

    with pytest.raises(MalformedBatch, match="2013-01-02.csv"):
        batches.read_raw(missing, Window(DAY_A))


def test_batch_id_depends_on_window_and_bytes_only():
    window = Window(DAY_A)
    first = batches.RawBatch("a/2013-01-02.csv", window, b"same bytes")
    again = batches.RawBatch("b/elsewhere.csv", window, b"same bytes")
    corrected = batches.RawBatch("a/2013-01-02.csv", window, b"other bytes")

    assert first.batch_id == again.batch_id
    assert first.batch_id != corrected.batch_id
    assert first.batch_id.startswith("2013-01-02-")


def test_with_lineage_adds_batch_source_and_utc_time(drop_day):
    batch = drop_day(DAY_A)
    at = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))

    bronze = batches.with_lineage(parse(batch), batch, at)

    assert set(bronze["_batch_id"]) == {batch.batch_id}
    assert set(bronze["_source"]) == {"2013-01-02.csv"}
    assert set(bronze["_ingested_at"]) == {pd.Timestamp("2024-05-01 10:00", tz="UTC")}


def _rejected(drop_day, text: str) -> tuple[batches.RawBatch, MalformedBatch]:
    batch = drop_day(DAY_A, text)
    with pytest.raises(MalformedBatch) as caught:
        parse(batch)
    return batch, caught.value


@pytest.mark.parametrize(
    "text",
    [edit_cell(GOOD, 3, "dep_delay", "abc"), _drop_column(GOOD, "origin"), "a,b\n1,2\n\n3,4"],
    ids=["bad value", "missing column", "short file with a blank line"],
)
def test_quarantine_rows_keep_every_raw_line_in_order(drop_day, text):
    batch, error = _rejected(drop_day, text)
    at = datetime(2024, 5, 1, tzinfo=UTC)

    rows = batches.quarantine_rows(batch, error, at)

    lines = text.splitlines()
    assert len(rows) == len(lines)
    assert rows["raw_line"].tolist() == lines
    assert rows["line_number"].tolist() == list(range(1, len(lines) + 1))
    assert set(rows["reason"]) == {str(error)}
    assert set(rows["batch_id"]) == {batch.batch_id}
    assert set(rows["window"]) == {"2013-01-02"}
    assert set(rows["source"]) == {"2013-01-02.csv"}


def test_quarantine_rows_keep_the_column_and_line_of_the_error(drop_day):
    batch, error = _rejected(drop_day, edit_cell(GOOD, 3, "dep_delay", "abc"))

    rows = batches.quarantine_rows(batch, error, datetime(2024, 5, 1, tzinfo=UTC))

    assert set(rows["error_column"]) == {"dep_delay"}
    assert set(rows["error_row"]) == {4}
    assert "abc" in rows.loc[rows["line_number"] == 4, "raw_line"].item()


def test_quarantine_of_an_empty_file_still_records_the_reason(drop_day):
    batch, error = _rejected(drop_day, "")

    rows = batches.quarantine_rows(batch, error, datetime(2024, 5, 1, tzinfo=UTC))

    assert len(rows) >= 1
    assert set(rows["reason"]) == {str(error)}
    assert rows["raw_line"].isna().all()
