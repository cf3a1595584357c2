"""Parsing a source system's day file into a typed batch, or a MalformedBatch naming file, column, row."""

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lakeops.datasets.declaration import Source
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.ingest import drift
from lakeops.ingest.drift import NA_TOKENS


@dataclass(frozen=True)
class RawBatch:
    """The bytes of one source file as delivered, before any parsing.

    A Parquet file is read as the CSV text of its table (`text`): drift, typing and quarantine then
    treat both formats alike, and a quarantined Parquet batch keeps one line per row of that text.
    """

    source: str
    window: Window
    content: bytes
    format: str = "csv"

    @property
    def batch_id(self) -> str:
        """Same bytes, same id: re-delivering a file is recognised as the same batch."""
        return f"{self.window.key}-{hashlib.sha256(self.content).hexdigest()[:12]}"

    @cached_property
    def text(self) -> bytes:
        """The file as CSV bytes: the content itself, or a Parquet file's table written as CSV."""
        if self.format != "parquet":
            return self.content
        try:
            table = pq.read_table(pa.BufferReader(self.content))
        except (pa.ArrowInvalid, OSError) as exc:
            raise MalformedBatch(self.source, f"not a readable Parquet file: {exc}") from exc
        out = io.BytesIO()
        pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="needed"))
        return out.getvalue()

    @property
    def lines(self) -> list[str]:
        """The file's lines as quarantine keeps them (an unreadable Parquet file: its raw bytes' lines)."""
        try:
            text = self.text
        except MalformedBatch:
            text = self.content
        return text.decode("utf-8", errors="replace").splitlines()


def read_raw(path: Path, window: Window, format: str = "csv") -> RawBatch:
    """Read a source file's bytes; raises MalformedBatch if it does not exist."""
    if not path.is_file():
        raise MalformedBatch(str(path), "file not found in the landing zone")
    return RawBatch(source=str(path), window=window, content=path.read_bytes(), format=format)


def parse(batch: RawBatch, source: Source, *, accept_additive: bool | None = None) -> pd.DataFrame:
    """Typed rows of the batch; raises MalformedBatch at the first problem found.

    The batch's schema is checked against the source contract before any value is typed: drift
    raises SchemaDrifted (a MalformedBatch) naming the file and every change. With
    `accept_additive` (default: the source's `accept_additive_drift`), a batch whose only drift is new
    columns parses to the contract's columns: the new columns are dropped from the typed rows and
    survive only in the raw file, which Bronze's `_batch_id` (a hash of its bytes) and `_source` name.
    """
    if not batch.text.strip():
        raise MalformedBatch(batch.source, "empty file: no header and no rows")
    additive = source.accept_additive_drift if accept_additive is None else accept_additive
    found = drift.compare(drift.expected(source), drift.observe(batch))
    if found.drifted and not (additive and found.additive_only):
        raise SchemaDrifted(batch.source, found)
    frame = _read_strings(batch)
    if frame.empty:
        raise MalformedBatch(batch.source, "header but no data rows")
    typed = pd.DataFrame({name: _typed(frame, name, typ, batch) for name, typ in source.columns.items()})
    _check_window(typed, batch, source)
    return typed  # indexed by line number: late records beyond the allowance are quarantined by line


def _read_strings(batch: RawBatch) -> pd.DataFrame:
    """Every cell as a string (None for NA), indexed by the line number each row sits on."""
    try:
        reader = csv.reader(io.StringIO(batch.text.decode("utf-8")))
        header = next(reader)
        rows: list[list[str]] = []
        lines: list[int] = []
        for record in reader:
            if not record:
                continue  # a blank line holds no row
            if len(record) != len(header):
                reason = f"{len(record)} fields where the header has {len(header)}"
                raise MalformedBatch(batch.source, reason, None, reader.line_num)
            rows.append(record)
            lines.append(reader.line_num)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise MalformedBatch(batch.source, f"not a readable CSV file: {exc}") from exc
    frame = pd.DataFrame(rows, columns=header, index=pd.Index(lines, name="line"), dtype="str")
    return frame.mask(frame.isin(NA_TOKENS), None)


def _typed(frame: pd.DataFrame, name: str, typ: pa.DataType, batch: RawBatch) -> pd.Series:
    raw = frame[name]
    if pa.types.is_string(typ):
        return raw.astype("str").where(raw.notna(), None)
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & numbers.isna()
    if pa.types.is_integer(typ):
        bad |= numbers.notna() & (numbers % 1 != 0)
    if bad.any():
        line = int(bad.idxmax())
        kind = "an integer" if pa.types.is_integer(typ) else "a number"
        raise MalformedBatch(batch.source, f"value {raw.loc[line]!r} is not {kind}", name, line)
    return numbers.astype("Int64") if pa.types.is_integer(typ) else numbers.astype("Float64")


def _check_window(typed: pd.DataFrame, batch: RawBatch, source: Source) -> None:
    """Every row is dated in the file's window or before it (a late record); a later date is malformed."""
    columns = source.event_time.columns
    for column in columns:
        if typed[column].isna().any():
            line = int(typed[column].isna().idxmax())
            raise MalformedBatch(batch.source, "no value: the row's window is unknown", column, line)
    moments = _moments(typed, source, batch)
    after = moments >= pd.Timestamp(batch.window.end)
    if after.any():
        line = int(after.idxmax())
        column = _differing_part(typed.loc[line], source, batch.window) or columns[0]
        value = typed.loc[line, column]
        value = value.item() if hasattr(value, "item") else value
        dated = Window.parse(moments.loc[line].to_pydatetime(), source.event_time.grain)
        reason = f"value {value!r} dates the row {dated}, after window {batch.window}"
        raise MalformedBatch(batch.source, reason, column, line)


def _moments(typed: pd.DataFrame, source: Source, batch: RawBatch) -> pd.Series:
    """Each row's instant from its event-time columns; an impossible date is malformed, named by line."""
    event_time = source.event_time
    try:
        return event_time.moments(typed)
    except (ValueError, OverflowError):
        pass
    for line in typed.index:  # find the first row that does not date
        try:
            event_time.moments(typed.loc[[line]])
        except (ValueError, OverflowError):
            values = tuple(typed.loc[line, c] for c in event_time.columns)
            reason = f"{values} is not a date ({', '.join(event_time.columns)})"
            raise MalformedBatch(batch.source, reason, event_time.columns[-1], int(line)) from None
    raise AssertionError("unreachable: every row dated one by one")


def _differing_part(row: pd.Series, source: Source, window: Window) -> str | None:
    """The first date part of a row that differs from its file's window (the column to name)."""
    parts = source.event_time.parts
    expected = (window.day.year, window.day.month, window.day.day, window.hour)
    return next((c for c, w in zip(parts, expected, strict=False) if row[c] != w), None)


def with_lineage(typed: pd.DataFrame, batch: RawBatch, ingested_at: datetime) -> pd.DataFrame:
    """Bronze rows: the typed source rows plus batch id, source and ingestion time."""
    return typed.assign(
        _batch_id=batch.batch_id,
        _source=Path(batch.source).name,
        _ingested_at=pd.Timestamp(ingested_at.astimezone(UTC)),
    )


def quarantine_rows(
    batch: RawBatch, error: MalformedBatch, at: datetime, only_lines: list[int] | None = None
) -> pd.DataFrame:
    """The whole raw batch, one row per line (header included), with the reason it was rejected.

    With `only_lines` (1-based line numbers), just those lines: the rest of the batch was accepted.
    """
    lines: Sequence[str | None] = batch.lines or [None]
    numbers: Sequence[int | None] = [i + 1 if line is not None else None for i, line in enumerate(lines)]
    if only_lines is not None:
        keep = set(only_lines)
        numbers, lines = zip(*[(n, line) for n, line in zip(numbers, lines, strict=True) if n in keep], strict=True)
    return pd.DataFrame(
        {
            "batch_id": batch.batch_id,
            "source": Path(batch.source).name,
            "window": batch.window.key,
            "line_number": list(numbers),
            "raw_line": list(lines),
            "reason": str(error),
            "error_column": error.column,
            "error_row": error.row,
            "quarantined_at": pd.Timestamp(at.astimezone(UTC)),
        }
    )
