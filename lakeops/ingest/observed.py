"""What a batch delivers: its header's columns, the type each column's values parse to, and where they are null.

A column's observed type is the narrowest type (int64 < float64 < string) that at least half of its
non-null values parse to; a typed file (Parquet) says its types itself. `drift` compares what is
observed here with the source's contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lakeops.ingest import records

if TYPE_CHECKING:
    from lakeops.ingest.batches import RawBatch

NA_TOKENS = ("", "NA")  # how the source writes a missing value
HEADER_LINE = 1

NULL, INT, FLOAT, STRING = "null", "int64", "float64", "string"
_WIDTH = {NULL: 0, INT: 1, FLOAT: 2, STRING: 3}  # every value of a type also parses as any wider one
SAMPLE_SIZE = 3


def type_name(typ: pa.DataType) -> str:
    """The drift check's name for an Arrow type of a source column.

    Text values parse to integer, number or string; a typed file (Parquet) also carries decimals,
    dates and timestamps, named by their Arrow type (a decimal's precision and scale included).
    """
    if pa.types.is_integer(typ):
        return INT
    if pa.types.is_floating(typ):
        return FLOAT
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return STRING
    return str(typ)


def fits(observed: str, expected: str) -> bool:
    """Values of `observed` type are accepted as `expected`: a narrower text type, or the same typed one."""
    if observed in _WIDTH and expected in _WIDTH:
        return _WIDTH[observed] <= _WIDTH[expected]
    return observed == expected or observed == NULL


@dataclass(frozen=True)
class ValueKind:
    """The values of one column whose narrowest type is `type`: how many, the first line, a sample."""

    type: str
    count: int
    first_line: int
    sample: tuple[str, ...]


@dataclass(frozen=True)
class ObservedColumn:
    """One header column of a batch: the type its values parse to and where they are null."""

    name: str
    type: str  # NULL when every value is missing
    values: int
    nulls: int
    first_null_line: int | None
    kinds: tuple[ValueKind, ...]

    def not_of(self, type_: str) -> tuple[int, int | None, tuple[str, ...]]:
        """(count, first line, sample) of the values that do not parse as `type_`."""
        wider = [k for k in self.kinds if not fits(k.type, type_)]
        sample = tuple(v for k in wider for v in k.sample)[:SAMPLE_SIZE]
        return sum(k.count for k in wider), min((k.first_line for k in wider), default=None), sample

    @property
    def sample(self) -> tuple[str, ...]:
        return tuple(v for k in self.kinds for v in k.sample)[:SAMPLE_SIZE]


@dataclass(frozen=True)
class ObservedSchema:
    """A batch's header columns as delivered, with the rows that had as many cells as the header."""

    columns: tuple[ObservedColumn, ...]
    rows: int


def observe(batch: RawBatch) -> ObservedSchema:
    """The batch's columns and what their values parse to; never raises (ingest names broken lines).

    A Parquet file's columns are typed already: its schema says what each holds.
    """
    if batch.format == "parquet" and batch.table is not None:
        return observe_table(batch.table)
    read = records.tolerant(batch.text.decode("utf-8", errors="replace"))
    header, rows = read.header, read.rows
    cells = np.array(rows, dtype=object).reshape(len(rows), len(header))
    at = np.array(read.starts, dtype=np.int64)
    return ObservedSchema(tuple(_observe_column(name, cells[:, i], at) for i, name in enumerate(header)), len(rows))


def observe_table(table: pa.Table) -> ObservedSchema:
    """The columns of a typed table (a Parquet file), row N on line N + 1 of its CSV text (the header is line 1)."""
    return ObservedSchema(tuple(_observe_typed(table, name) for name in table.column_names), len(table))


def _observe_typed(table: pa.Table, name: str) -> ObservedColumn:
    column = table[name]
    type_ = NULL if pa.types.is_null(column.type) else type_name(column.type)
    if type_ == FLOAT and _integral(column):
        type_ = INT  # as in a text file, 42.0 is an integer (pandas writes an integer column with nulls as floats)
    nulls = column.null_count
    first_null = _first_line(column.is_null()) if nulls else None
    values = len(column) - nulls
    if not values:
        return ObservedColumn(name, NULL, 0, nulls, first_null, ())
    head = column.slice(0, 1000).drop_null().unique().slice(0, SAMPLE_SIZE)
    first = _first_line(column.is_valid())
    kind = ValueKind(type_, values, first, tuple(str(v) for v in head.to_pylist()))
    return ObservedColumn(name, type_, values, nulls, first_null, (kind,))


def _integral(column: pa.ChunkedArray) -> bool:
    values = column.drop_null()
    return bool(pc.all(pc.equal(pc.floor(values), values)).as_py() is not False)


def _first_line(mask: pa.ChunkedArray) -> int:
    return int(pc.index(mask, True).as_py()) + HEADER_LINE + 1


def _observe_column(name: str, raw: np.ndarray, lines: np.ndarray) -> ObservedColumn:
    null = np.isin(raw, NA_TOKENS)
    numbers = np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=np.float64)
    integral = np.isfinite(numbers) & (numbers == np.floor(numbers))
    masks = {INT: integral, FLOAT: ~np.isnan(numbers) & ~integral, STRING: ~null & np.isnan(numbers)}
    kinds = tuple(_kind(t, raw[m], lines[m]) for t, m in masks.items() if m.any())
    values = sum(k.count for k in kinds)
    first_null = int(lines[null][0]) if null.any() else None
    return ObservedColumn(name, _majority_type(kinds, values), values, int(null.sum()), first_null, kinds)


def _kind(type_: str, values: np.ndarray, lines: np.ndarray) -> ValueKind:
    sample = tuple(str(v) for v in pd.unique(values)[:SAMPLE_SIZE])
    return ValueKind(type_, len(values), int(lines[0]), sample)


def _majority_type(kinds: tuple[ValueKind, ...], values: int) -> str:
    parsed = 0
    for kind in kinds:  # narrowest first
        parsed += kind.count
        if 2 * parsed >= values:
            return kind.type
    return NULL
