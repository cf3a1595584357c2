"""Parsing a source system's day file into a typed batch, or a MalformedBatch naming file, column, row."""

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa

from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.iceberg.schemas import SOURCE_COLUMNS
from lakeops.ingest import drift
from lakeops.ingest.drift import NA_TOKENS


@dataclass(frozen=True)
class RawBatch:
    """The bytes of one day file as delivered, before any parsing."""

    source: str
    window: Window
    content: bytes

    @property
    def batch_id(self) -> str:
        """Same bytes, same id: re-delivering a file is recognised as the same batch."""
        return f"{self.window.key}-{hashlib.sha256(self.content).hexdigest()[:12]}"

    @property
    def lines(self) -> list[str]:
        return self.content.decode("utf-8", errors="replace").splitlines()


def read_raw(path: Path, window: Window) -> RawBatch:
    """Read a day file's bytes; raises MalformedBatch if it does not exist."""
    if not path.is_file():
        raise MalformedBatch(str(path), "file not found in the landing zone")
    return RawBatch(source=str(path), window=window, content=path.read_bytes())


def parse(batch: RawBatch, *, accept_additive: bool = False) -> pd.DataFrame:
    """Typed rows of the batch; raises MalformedBatch at the first problem found.

    The batch's schema is checked against the source contract before any value is typed: drift
    raises SchemaDrifted (a MalformedBatch) naming the file and every change. With
    `accept_additive` (the contract's `accept_additive_drift`), a batch whose only drift is new
    columns parses to the contract's columns: the new columns are dropped from the typed rows and
    survive only in the raw file, which Bronze's `_batch_id` (a hash of its bytes) and `_source` name.
    """
    if not batch.content.strip():
        raise MalformedBatch(batch.source, "empty file: no header and no rows")
    found = drift.compare(drift.FLIGHTS_SOURCE, drift.observe(batch))
    if found.drifted and not (accept_additive and found.additive_only):
        raise SchemaDrifted(batch.source, found)
    frame = _read_strings(batch)
    if frame.empty:
        raise MalformedBatch(batch.source, "header but no data rows")
    typed = pd.DataFrame({name: _typed(frame, name, typ, batch) for name, typ in SOURCE_COLUMNS.items()})
    _check_window(typed, batch)
    return typed  # indexed by line number: late records beyond the allowance are quarantined by line


def _read_strings(batch: RawBatch) -> pd.DataFrame:
    """Every cell as a string (None for NA), indexed by the line number each row sits on."""
    try:
        reader = csv.reader(io.StringIO(batch.content.decode("utf-8")))
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


def _check_window(typed: pd.DataFrame, batch: RawBatch) -> None:
    """Every row is dated in the file's window or before it (a late record); a later date is malformed."""
    for column in ("year", "month", "day"):
        if typed[column].isna().any():
            line = int(typed[column].isna().idxmax())
            raise MalformedBatch(batch.source, "no value: the row's day is unknown", column, line)
    parts = typed[["year", "month", "day"]].astype("int64")
    days = pd.to_datetime(parts, errors="coerce")
    if days.isna().any():
        line = int(days.isna().idxmax())
        raise MalformedBatch(batch.source, f"{tuple(parts.loc[line])} is not a date (year, month, day)", "day", line)
    after = days.dt.date > batch.window.day
    if after.any():
        line = int(after.idxmax())
        window = batch.window.day
        column = next(
            c
            for c, w in zip(parts.columns, (window.year, window.month, window.day), strict=True)
            if parts.loc[line, c] != w
        )
        value = parts.loc[line, column]
        reason = f"value {value!r} dates the row {days.loc[line].date()}, after window {batch.window}"
        raise MalformedBatch(batch.source, reason, column, line)


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
    lines = batch.lines or [None]
    numbers = [i + 1 if line is not None else None for i, line in enumerate(lines)]
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
