"""A batch's typed rows in Arrow, each with the line of its file it came from.

A CSV file is typed value by value (`values`); a Parquet file is typed already, so its columns are
checked against the contract by their Arrow types (`observed.observe_table`) and cast without leaving
Arrow: a window of hundreds of thousands of rows never becomes Python objects. Row N of a Parquet
file is line N + 1 of its CSV text (the header is line 1), the lines its quarantine keeps.
"""

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lakeops.datasets.checks import Timestamp
from lakeops.datasets.declaration import Source
from lakeops.datasets.windows import WindowColumn
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.ingest import drift, observed


@dataclass(frozen=True)
class TypedRows:
    """The contract's columns, typed, in contract order; `lines[i]` is the line row i was read from."""

    rows: pa.Table
    lines: pd.Index

    def events(self, event_time: WindowColumn) -> pd.DataFrame:
        """The event-time columns as a frame indexed by line: what places each row in its window."""
        frame = self.rows.select(list(event_time.columns)).to_pandas(date_as_object=False)
        return frame.set_axis(self.lines, axis=0)

    def take(self, lines: pd.Index) -> pa.Table:
        """The rows read from `lines`, in that order (the rows themselves, no copy, when that is all of them)."""
        if lines.equals(self.lines):
            return self.rows
        return self.rows.take(pa.array(self.lines.get_indexer(lines), pa.int64()))


def source_schema(source: Source) -> pa.Schema:
    return pa.schema([pa.field(name, typ) for name, typ in source.columns.items()])


def from_frame(typed: pd.DataFrame, source: Source) -> TypedRows:
    """A CSV batch's typed frame (indexed by line) as Arrow rows."""
    return TypedRows(pa.Table.from_pandas(typed, schema=source_schema(source), preserve_index=False), typed.index)


def from_table(table: pa.Table, source: Source, where: str, additive: bool) -> TypedRows:
    """A Parquet batch's rows: its schema checked against the contract, cast to it, every value checked."""
    if not len(table):
        raise MalformedBatch(where, "no data rows")
    found = drift.compare(drift.expected(source), observed.observe_table(table))
    if found.drifted and not (additive and found.additive_only):
        raise SchemaDrifted(where, found)
    lines = pd.RangeIndex(observed.HEADER_LINE + 1, len(table) + observed.HEADER_LINE + 1, name="line")
    columns = [_cast(table[name], typ, name, where) for name, typ in source.columns.items()]
    typed = TypedRows(pa.Table.from_arrays(columns, schema=source_schema(source)), lines)
    _check_values(typed, source, where)
    return typed


def _cast(column: pa.ChunkedArray, typ: pa.DataType, name: str, where: str) -> pa.ChunkedArray:
    try:
        return pc.cast(column, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise MalformedBatch(where, f"values of type {column.type} do not fit {typ}: {exc}", name) from None


def _check_values(typed: TypedRows, source: Source, where: str) -> None:
    """Every declared check on every non-null value; MalformedBatch at the first row that breaks one."""
    for column, checks in source.value_checks.items():
        array = typed.rows[column]
        # A date or timestamp column is a timestamp by its type: nothing to parse.
        wanted = [c for c in checks if not (isinstance(c, Timestamp) and _temporal(array.type))]
        if not wanted:
            continue
        numeric = pc.cast(array, pa.float64()) if pa.types.is_decimal(array.type) else array
        series = pd.Series(numeric.to_pandas().to_numpy(), index=typed.lines).dropna()
        for check in wanted:
            bad = check.violations(series)
            if bad.any():
                line = int(bad.idxmax())
                value = array[typed.lines.get_loc(line)].as_py()
                raise MalformedBatch(where, f"value {value!r} is not {check.expectation}", column, line)


def _temporal(typ: pa.DataType) -> bool:
    return bool(pa.types.is_date(typ) or pa.types.is_timestamp(typ))
