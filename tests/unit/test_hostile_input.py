"""Hostile landing files: the zone is a boundary, every fault is a lakeops error naming file, column and line,
and quarantine keeps the batch byte for byte (each case here was found reproducible on an earlier main)."""

import os
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops.build.pipeline import RunInfo
from lakeops.datasets.checks import Between, Matches, OneOf, Timestamp
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch
from lakeops.iceberg import lake
from lakeops.ingest import batches

from .conftest import DAY_A, day_text, edit_cell
from .flights import BRONZE_FLIGHTS, FLIGHTS, QUARANTINE_FLIGHTS, SOURCE, land, quarantine

RUN = RunInfo("hostile-run", "test")
WINDOW = Window(DAY_A)


def drop(landing_dir: Path, content: bytes) -> Path:
    path = landing.day_file(landing_dir, DAY_A)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def refused(landing_dir: Path, content: bytes) -> MalformedBatch:
    batch = batches.read_landed(landing_dir, SOURCE, WINDOW)
    assert batch.content == content
    with pytest.raises(MalformedBatch) as raised:
        batches.parse(batch, SOURCE)
    assert raised.value.source == str(landing.day_file(landing_dir, DAY_A))
    return raised.value


def with_text(landing_dir: Path, text: str) -> MalformedBatch:
    content = text.encode()
    drop(landing_dir, content)
    return refused(landing_dir, content)


def kept_rows(catalog: Catalog, batch: batches.RawBatch) -> pd.DataFrame:
    table = lake.load(catalog, QUARANTINE_FLIGHTS)
    rows = table.scan().to_pandas()
    return rows[rows.batch_id == batch.batch_id].sort_values("line_number").reset_index(drop=True)


# --- the landing zone is a boundary -----------------------------------------------------------------


def test_a_symlink_to_a_file_outside_the_zone_is_refused_before_a_byte_is_read(
    catalog: Catalog, landing_dir: Path, tmp_path: Path
):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    path = landing.day_file(landing_dir, DAY_A)
    path.parent.mkdir(parents=True)
    path.symlink_to(secret)
    with pytest.raises(MalformedBatch, match="a symbolic link to .*secret.txt.*not a regular file") as raised:
        batches.read_landed(landing_dir, SOURCE, WINDOW)
    assert raised.value.source == str(path)
    assert lake.load(catalog, QUARANTINE_FLIGHTS).current_snapshot() is None  # nothing of it reached a table


def test_a_file_reached_through_a_linked_folder_outside_the_zone_is_refused(landing_dir: Path, tmp_path: Path):
    outside = tmp_path / "elsewhere"
    landing.drop_day_file(outside, DAY_A)
    landing_dir.mkdir()
    (landing_dir / "flights").symlink_to(outside / "flights", target_is_directory=True)
    with pytest.raises(MalformedBatch, match="outside the landing zone"):
        batches.read_landed(landing_dir, SOURCE, WINDOW)


def test_a_directory_and_a_named_pipe_are_refused_as_what_they_are(landing_dir: Path):
    path = landing.day_file(landing_dir, DAY_A)
    path.mkdir(parents=True)
    with pytest.raises(MalformedBatch, match="a directory, not a regular file"):
        batches.read_landed(landing_dir, SOURCE, WINDOW)
    path.rmdir()
    os.mkfifo(path)  # reading it would block forever: it is refused without being opened for a read
    with pytest.raises(MalformedBatch, match="a named pipe, not a regular file"):
        batches.read_landed(landing_dir, SOURCE, WINDOW)


def test_a_missing_file_is_named_as_missing(landing_dir: Path):
    with pytest.raises(MalformedBatch, match="file not found in the landing zone"):
        batches.read_landed(landing_dir, SOURCE, WINDOW)


def test_a_file_over_the_contracts_size_limit_is_refused(landing_dir: Path):
    drop(landing_dir, day_text(DAY_A).encode())
    small = SOURCE.__class__(**{**SOURCE.__dict__, "max_bytes": 1000})
    with pytest.raises(MalformedBatch, match=r"bytes: larger than the contract's limit of 1,000"):
        batches.read_landed(landing_dir, small, WINDOW)


# --- every value checked before Bronze -------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("time_hour", "not-a-time", "is not an ISO 8601 timestamp"),
        ("dep_time", "9223372036854775808", "out of the 64-bit integer range"),
        ("dep_time", "99999999999999999999999", "out of the 64-bit integer range"),
        ("distance", "12abc", "is not an integer"),
        ("dep_delay", "inf", "is not a finite number"),
        ("hour", "24", "is not between 0 and 23"),
        ("minute", "-1", "is not between 0 and 59"),
        ("origin", "XYZ", "is not a string matching"),
        ("month", "13", "is not between 1 and 12"),
        ("month", "-1", "is not between 1 and 12"),
    ],
)
def test_a_value_silver_could_not_type_is_malformed_at_ingest_by_column_and_line(
    landing_dir: Path, column: str, value: str, expected: str
):
    error = with_text(landing_dir, edit_cell(day_text(DAY_A), 7, column, value))
    assert (error.column, error.row) == (column, 8)
    assert expected in error.reason and repr(value) in error.reason


def test_a_file_cut_off_inside_its_last_field_is_malformed_on_its_last_line(landing_dir: Path):
    text = day_text(DAY_A)
    cut = text[: text.rindex("T") + 2]  # ...,2013-01-02T1
    error = with_text(landing_dir, cut)
    assert (error.column, error.row) == ("time_hour", cut.count("\n") + 1)


def test_an_impossible_date_names_the_day(landing_dir: Path):
    text = edit_cell(edit_cell(day_text(DAY_A), 3, "month", "2"), 3, "day", "30")
    error = with_text(landing_dir, text)
    assert (error.column, error.row) == ("day", 4)


def test_checks_are_declared_against_known_columns_only():
    with pytest.raises(ValueError, match="checks name columns not in its columns"):
        SOURCE.__class__(**{**SOURCE.__dict__, "checks": {"no_such": Between(0, 1)}})
    with pytest.raises(ValueError, match="low <= high"):
        Between(2, 1)
    with pytest.raises(ValueError, match="at least one value"):
        OneOf(())
    assert "one of 'A', 'B'" == OneOf(("A", "B")).expectation
    assert Timestamp().violations(pd.Series(["2013-01-01 05:00:00", "2013-13-01"])).tolist() == [False, True]
    assert Matches("[A-Z]{3}").violations(pd.Series(["JFK", "jfk"])).tolist() == [False, True]


# --- faults named where they are ---------------------------------------------------------------------


def test_a_duplicated_header_column_is_named_on_line_one(landing_dir: Path):
    lines = day_text(DAY_A).splitlines()
    text = "\n".join([lines[0].replace("dep_delay", "carrier"), *lines[1:]]) + "\n"
    error = with_text(landing_dir, text)
    assert (error.column, error.row) == ("carrier", 1) and "appears twice in the header" in error.reason


def test_an_unbalanced_quote_is_named_at_the_line_that_opened_it(landing_dir: Path):
    text = edit_cell(day_text(DAY_A), 1, "tailnum", '"N14228')
    error = with_text(landing_dir, text)
    assert error.row == 2 and "opened on line 2 is never closed" in error.reason


def test_bytes_that_are_not_utf8_are_named_by_line_and_column(landing_dir: Path):
    text = edit_cell(day_text(DAY_A), 4, "tailnum", "N\udcff\udcfe")
    content = text.encode("utf-8", errors="surrogateescape")
    drop(landing_dir, content)
    error = refused(landing_dir, content)
    assert (error.column, error.row) == ("tailnum", 5) and "0xff 0xfe" in error.reason


def test_an_over_long_value_names_its_column_and_line(landing_dir: Path):
    error = with_text(landing_dir, edit_cell(day_text(DAY_A), 9, "dest", "X" * 5_000_000))
    assert (error.column, error.row) == ("dest", 10) and "5,000,000 characters" in error.reason


# --- quarantine is byte-faithful --------------------------------------------------------------------------


@pytest.mark.parametrize("odd", ["\u2028", "\x0c", "\x1c", "\x85", "\r"])
def test_quarantine_holds_the_files_lines_as_a_csv_reader_counts_them(catalog: Catalog, landing_dir: Path, odd: str):
    text = edit_cell(day_text(DAY_A), 6, "dep_time", "soon")  # a fault on line 7: the file is refused
    lines = text.split("\n")
    cells = lines[3].split(",")
    cells[11] = f'"N{odd}1"'  # tailnum, quoted, holding a separator that str.splitlines would split on
    lines[3] = ",".join(cells)
    text = "\n".join(lines)
    content = text.encode()
    batch = batches.read_raw(drop(landing_dir, content), WINDOW)
    with pytest.raises(MalformedBatch) as raised:
        land(catalog, batch, RUN)
    assert raised.value.row == 7
    kept = quarantine(catalog, batch, raised.value, RUN)
    rows = kept_rows(catalog, batch)
    assert kept == len(rows) == content.count(b"\n")  # one row per line: the separator split no line
    assert b"".join(rows.raw_bytes) == content
    assert rows.line_number.tolist() == list(range(1, kept + 1))
    assert rows.raw_line[raised.value.row - 1].split(",")[3] == "soon"  # the row the error names


def test_random_bytes_are_kept_recoverably_one_row_per_newline(catalog: Catalog, landing_dir: Path):
    content = bytes(range(256)) * 16  # 4 KB: every byte value, 16 newlines, undecodable bytes
    batch = batches.read_raw(drop(landing_dir, content), WINDOW)
    bronze_before = lake.load(catalog, BRONZE_FLIGHTS).current_snapshot()
    with pytest.raises(MalformedBatch) as raised:
        land(catalog, batch, RUN)
    kept = quarantine(catalog, batch, raised.value, RUN)
    rows = kept_rows(catalog, batch)
    assert kept == len(rows) == content.count(b"\n") + 1  # the last line has no newline
    assert b"".join(rows.raw_bytes) == content
    assert lake.load(catalog, BRONZE_FLIGHTS).current_snapshot() == bronze_before


def test_a_real_file_still_lands_whole(catalog: Catalog, drop_day):
    batch = drop_day(DAY_A)
    landed = land(catalog, batch, RUN)
    assert landed.own.row_count == len(batch.lines) - 1 == 943


def test_every_declared_dataset_checks_its_event_time_as_dates():
    checks = FLIGHTS.source.value_checks
    assert [c.expectation for c in checks["month"]] == ["between 1 and 12"]
    assert [c.expectation for c in checks["day"]] == ["between 1 and 31"]
    assert isinstance(checks["time_hour"][0], Timestamp)
    assert date(2013, 1, 2) == DAY_A
