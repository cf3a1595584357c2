"""Parsing a source system's day file into a typed batch, or a MalformedBatch naming file, column, row."""

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
from lakeops.ingest import drift, landing_zone, observed, records, typed, values
from lakeops.ingest.landing_zone import DEFAULT_MAX_BYTES
from lakeops.ingest.observed import NA_TOKENS


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
    def table(self) -> pa.Table | None:
        """A Parquet file's table as written (None for a CSV file); MalformedBatch when it cannot be read."""
        if self.format != "parquet":
            return None
        try:
            return pq.read_table(pa.BufferReader(self.content))
        except (pa.ArrowInvalid, OSError) as exc:
            raise MalformedBatch(self.source, f"not a readable Parquet file: {exc}") from exc

    @cached_property
    def text(self) -> bytes:
        """The file as CSV bytes: the content itself, or a Parquet file's table written as CSV.

        Only quarantine needs a Parquet file's text (its lines): ingest types the table itself.
        """
        if self.table is None:
            return self.content
        out = io.BytesIO()
        pacsv.write_csv(self.table, out, pacsv.WriteOptions(quoting_style="needed"))
        return out.getvalue()

    @property
    def lines(self) -> list[bytes]:
        """The file's lines as quarantine keeps them, byte for byte with their newlines (a CSV reader's lines).

        A Parquet file's lines are those of its CSV text; an unreadable Parquet file's, those of its bytes.
        """
        try:
            text = self.text
        except MalformedBatch:
            text = self.content
        return records.lines(text)

    def line(self, number: int) -> str:
        """Line `number` (1-based) as people read it: decoded, undecodable bytes as U+FFFD, no newline."""
        return readable(self.lines[number - 1])


def read_raw(
    path: Path, window: Window, format: str = "csv", *, landing: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> RawBatch:
    """Read a source file's bytes from the landing zone (default: the file's folder); MalformedBatch otherwise.

    Only a regular file inside the zone, of at most `max_bytes`, is read (see `landing_zone`).
    """
    content = landing_zone.read_file(path, landing, max_bytes)
    return RawBatch(source=str(path), window=window, content=content, format=format)


def read_landed(landing: Path, source: Source, window: Window) -> RawBatch:
    """The file a source lands for `window`, read within the landing zone under the source's size limit."""
    path = landing / source.file(window.key)
    return read_raw(path, window, source.format, landing=landing, max_bytes=source.max_bytes)


def parse(batch: RawBatch, source: Source, *, accept_additive: bool | None = None) -> pd.DataFrame:
    """Typed rows of the batch; raises MalformedBatch at the first problem found.

    The file is read as CSV records first (a fault names its line; a duplicated header column, bytes
    that are not UTF-8 and over-long values are refused). Then its schema is checked against the
    source contract before any value is typed: drift raises SchemaDrifted (a MalformedBatch) naming
    the file and every change. With `accept_additive` (default: the source's `accept_additive_drift`),
    a batch whose only drift is new columns parses to the contract's columns: the new columns are
    dropped from the typed rows and survive only in the raw file, which Bronze's `_batch_id` (a hash
    of its bytes) and `_source` name. Last, every value is typed and checked (`values`).
    """
    if not batch.text.strip():
        raise MalformedBatch(batch.source, "empty file: no header and no rows")
    read = records.read(batch.source, batch.text, source.max_value_chars)
    additive = source.accept_additive_drift if accept_additive is None else accept_additive
    found = drift.compare(drift.expected(source), observed.observe(batch))
    if found.drifted and not (additive and found.additive_only):
        raise SchemaDrifted(batch.source, found)
    frame = _strings(read)
    if frame.empty:
        raise MalformedBatch(batch.source, "header but no data rows")
    typed = values.typed(frame, source, batch.source)
    values.check_window(typed, source, batch.window, batch.source)
    return typed  # indexed by line number: late records beyond the allowance are quarantined by line


def typed_rows(batch: RawBatch, source: Source, *, accept_additive: bool | None = None) -> typed.TypedRows:
    """The batch's rows typed to the contract in Arrow, each with its line; MalformedBatch as `parse` says.

    A Parquet file is checked and cast in Arrow; a CSV file is parsed value by value (`parse`).
    """
    if batch.table is None:
        return typed.from_frame(parse(batch, source, accept_additive=accept_additive), source)
    additive = source.accept_additive_drift if accept_additive is None else accept_additive
    rows = typed.from_table(batch.table, source, batch.source, additive)
    values.check_window(rows.events(source.event_time), source, batch.window, batch.source)
    return rows


def _strings(read: records.Records) -> pd.DataFrame:
    """Every cell as a string (None for NA), indexed by the line each record starts on."""
    frame = pd.DataFrame(read.rows, columns=read.header, index=pd.Index(read.starts, name="line"), dtype="str")
    return frame.mask(frame.isin(NA_TOKENS), None)


def with_lineage(typed: pd.DataFrame, batch: RawBatch, ingested_at: datetime) -> pd.DataFrame:
    """Bronze rows: the typed source rows plus batch id, source and ingestion time."""
    return typed.assign(
        _batch_id=batch.batch_id,
        _source=Path(batch.source).name,
        _ingested_at=pd.Timestamp(ingested_at.astimezone(UTC)),
    )


def lineage(rows: pa.Table, batch: RawBatch, ingested_at: datetime) -> pa.Table:
    """Bronze rows in Arrow: the typed source rows plus batch id, source and ingestion time."""
    constants = {
        "_batch_id": pa.scalar(batch.batch_id, pa.string()),
        "_source": pa.scalar(Path(batch.source).name, pa.string()),
        "_ingested_at": pa.scalar(ingested_at.astimezone(UTC), pa.timestamp("us", tz="UTC")),
    }
    for name, value in constants.items():
        rows = rows.append_column(name, pa.repeat(value, len(rows)))
    return rows


def quarantine_rows(
    batch: RawBatch, error: MalformedBatch, at: datetime, only_lines: list[int] | None = None
) -> pd.DataFrame:
    """The whole raw batch, one row per line (header included), with the reason it was rejected.

    Row N holds line N of the file: `raw_bytes` its exact bytes (newline included: joined in order,
    they are the file), `raw_line` the same decoded for people (undecodable bytes as U+FFFD, without
    the newline). With `only_lines` (1-based line numbers), just those lines: the rest was accepted.
    """
    lines: Sequence[bytes | None] = batch.lines or [None]
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
            "raw_line": [readable(line) if line is not None else None for line in lines],
            "reason": str(error),
            "error_column": error.column,
            "error_row": error.row,
            "quarantined_at": pd.Timestamp(at.astimezone(UTC)),
            "raw_bytes": list(lines),
        }
    )


def readable(line: bytes) -> str:
    """A raw line for people: decoded (undecodable bytes as U+FFFD), without its newline."""
    return line.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
