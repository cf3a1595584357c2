"""Compare a release's two outputs (blue, green) when their fingerprints (`fingerprint`) differ: a keyed diff.

The keyed diff matches rows by key and says which are only on one side, which changed and in which
columns, within a tolerance per column. Diffs of a table's windows merge into the table's (`merged`).
"""

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from itertools import chain, zip_longest
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.acero as acero
import pyarrow.compute as pc

from lakeops.release.hashing import is_number, row_hashes

_THREADS = min(4, os.cpu_count() or 1)
_NO_TOLERANCE: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True)
class ColumnDiff:
    """How one column compares on the rows present on both sides."""

    column: str
    compared: int
    matched: int
    tolerance: float
    max_abs_diff: float | None

    @property
    def match_rate(self) -> float:
        return self.matched / self.compared if self.compared else 1.0


@dataclass(frozen=True)
class KeyedDiff:
    """Rows matched by key: those only on one side, those changed, and how each column compares."""

    key: tuple[str, ...]
    rows_blue: int
    rows_green: int
    only_blue: int
    only_green: int
    changed: int
    columns: tuple[ColumnDiff, ...]
    columns_only_blue: tuple[str, ...]
    columns_only_green: tuple[str, ...]
    sample: tuple[dict[str, Any], ...]

    @property
    def identical(self) -> bool:
        one_sided = self.only_blue or self.only_green or self.columns_only_blue or self.columns_only_green
        return not one_sided and not self.changed

    @property
    def changed_fraction(self) -> float:
        both = self.rows_blue - self.only_blue
        return self.changed / both if both else 0.0

    @property
    def unmatched_fraction(self) -> float:
        return (self.only_blue + self.only_green) / max(self.rows_blue, self.rows_green, 1)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary, for a release log or a snapshot summary."""
        rates = {"identical": self.identical, "changed_fraction": self.changed_fraction}
        columns = [asdict(column) | {"match_rate": column.match_rate} for column in self.columns]
        return asdict(self) | rates | {"unmatched_fraction": self.unmatched_fraction, "columns": columns}


def keyed_diff(
    blue: pa.Table,
    green: pa.Table,
    key: Sequence[str],
    *,
    tolerance: Mapping[str, float] = _NO_TOLERANCE,
    float_tolerance: float = 0.0,
    ignore: Sequence[str] = (),
    sample_size: int = 10,
) -> KeyedDiff:
    """Match `blue` and `green` rows by `key` (a null key matches a null) and compare the other columns.

    `tolerance` is an absolute tolerance per column; `float_tolerance` applies to every other float
    column. Columns in `ignore` are neither compared nor reported. Raises ValueError on a key column
    missing on a side, duplicate keys on a side, or a tolerance or ignore naming an unusable column.
    """
    key = tuple(key)
    if not key or sample_size < 0 or not float_tolerance >= 0:
        raise ValueError(f"keyed_diff: needs a key ({key}), sample_size >= 0 ({sample_size}), float_tolerance >= 0")
    _check_columns(blue, green, key, tolerance, ignore)
    skip = set(key) | set(ignore)
    shared = [name for name in blue.column_names if name in green.column_names and name not in skip]
    floats = {name for name in shared if pa.types.is_floating(blue.schema.field(name).type)}
    limits = {name: tolerance.get(name, float_tolerance if name in floats else 0.0) for name in shared}
    with ThreadPoolExecutor(_THREADS) as pool:  # Arrow and numpy release the GIL: one column per core
        list(pool.map(_check_unique, (blue, green), (key, key), ("blue", "green")))
        match = _match(blue, green, key)
        compared = list(pool.map(lambda name: _compare(name, blue[name], green[name], match, limits[name]), shared))
    mismatches = {column.column: mask for column, mask in compared if mask is not None}
    changed = np.flatnonzero(np.logical_or.reduce([np.zeros(len(match.blue), bool), *mismatches.values()]))
    return KeyedDiff(
        key=key,
        rows_blue=blue.num_rows,
        rows_green=green.num_rows,
        only_blue=len(match.only_blue),
        only_green=len(match.only_green),
        changed=len(changed),
        columns=tuple(c for c, _ in compared),
        columns_only_blue=tuple(n for n in blue.column_names if n not in green.column_names and n not in skip),
        columns_only_green=tuple(n for n in green.column_names if n not in blue.column_names and n not in skip),
        sample=_sample((blue, green), key, match, mismatches, changed[:sample_size], sample_size),
    )


def merged(parts: Sequence[KeyedDiff], identical_rows: int = 0, sample_size: int = 10) -> KeyedDiff:
    """The diff of two tables from the diffs of their parts (windows: a key is in one part on both sides),
    and `identical_rows` rows of parts whose fingerprints were equal (the same columns, every value matched)."""
    if not parts:
        raise ValueError("merged: no diff to merge")
    columns: dict[str, ColumnDiff] = {}
    for column in chain.from_iterable(p.columns for p in parts):
        seen = columns.get(
            column.column, ColumnDiff(column.column, identical_rows, identical_rows, column.tolerance, None)
        )
        largest = [x for x in (seen.max_abs_diff, column.max_abs_diff) if x is not None]
        compared, matched = seen.compared + column.compared, seen.matched + column.matched
        columns[column.column] = ColumnDiff(
            column.column, compared, matched, seen.tolerance, max(largest, default=None)
        )
    return KeyedDiff(
        key=parts[0].key,
        rows_blue=identical_rows + sum(p.rows_blue for p in parts),
        rows_green=identical_rows + sum(p.rows_green for p in parts),
        only_blue=sum(p.only_blue for p in parts),
        only_green=sum(p.only_green for p in parts),
        changed=sum(p.changed for p in parts),
        columns=tuple(columns.values()),
        columns_only_blue=tuple(dict.fromkeys(chain.from_iterable(p.columns_only_blue for p in parts))),
        columns_only_green=tuple(dict.fromkeys(chain.from_iterable(p.columns_only_green for p in parts))),
        sample=tuple(chain.from_iterable(p.sample for p in parts))[:sample_size],
    )


class _Match(NamedTuple):
    """Row numbers: the pairs (blue's and green's, in blue's order), and the rows only on one side."""

    blue: np.ndarray
    green: np.ndarray
    only_blue: np.ndarray
    only_green: np.ndarray


def _check_columns(
    blue: pa.Table, green: pa.Table, key: tuple[str, ...], tolerance: Mapping[str, float], ignore: Sequence[str]
) -> None:
    for side, table in (("blue", blue), ("green", green)):
        if missing := [name for name in key if name not in table.column_names]:
            raise ValueError(f"keyed_diff: key column {', '.join(map(repr, missing))} missing in {side}")
    for name in key:
        if (kind := blue.schema.field(name).type) != (other := green.schema.field(name).type):
            raise ValueError(f"keyed_diff: key column {name!r} is {kind} in blue and {other} in green")
    known = set(blue.column_names) | set(green.column_names)
    for what, names in (("tolerance", list(tolerance)), ("ignore", list(ignore))):
        if unknown := [name for name in names if name not in known or name in key]:
            raise ValueError(f"keyed_diff: {what} on {', '.join(map(repr, unknown))}: not a non-key column")
    for name, limit in tolerance.items():
        table = blue if name in blue.column_names else green
        if not is_number(table.schema.field(name).type) or not limit >= 0:
            raise ValueError(f"keyed_diff: tolerance {limit!r} on {name!r}: needs a numeric column and a limit >= 0")


def _match(blue: pa.Table, green: pa.Table, key: tuple[str, ...]) -> _Match:
    """Join the key columns (Acero's hash join, multithreaded); needs keys unique on each side."""
    left, right = _join_keys(blue, green, key)
    names = left.column_names[:-1]
    options = acero.HashJoinNodeOptions("full outer", names, names, left_output=["_b"], right_output=["_g"])
    sources = [acero.Declaration("table_source", acero.TableSourceNodeOptions(t)) for t in (left, right)]
    joined = acero.Declaration("hashjoin", options, inputs=sources).to_table(use_threads=True)
    rows_b = pc.fill_null(joined["_b"], -1).to_numpy()
    rows_g = pc.fill_null(joined["_g"], -1).to_numpy()
    partner = np.full(blue.num_rows, -1, dtype=np.int64)  # unique keys: a scatter puts the pairs in blue's order
    partner[rows_b[rows_b >= 0]] = rows_g[rows_b >= 0]
    paired = np.flatnonzero(partner >= 0)
    return _Match(paired, partner[paired], np.flatnonzero(partner < 0), np.sort(rows_g[rows_b < 0]))


def _join_keys(blue: pa.Table, green: pa.Table, key: tuple[str, ...]) -> tuple[pa.Table, pa.Table]:
    """The key columns as Acero joins them: a null flag and a filled value, since null never equals null."""
    columns: list[tuple[str, pa.ChunkedArray, pa.ChunkedArray]] = []
    for i, name in enumerate(key):
        b, g = blue[name], green[name]
        if b.null_count or g.null_count:
            columns.append((f"null{i}", pc.is_null(b), pc.is_null(g)))
            fill = next((v for v in (pc.min(b), pc.min(g)) if v.is_valid), None)
            if fill is None:
                continue
            b, g = pc.fill_null(b, fill), pc.fill_null(g, fill)
        columns.append((f"key{i}", b, g))
    names = [name for name, _, _ in columns] + ["_b"]
    left = pa.table([b for _, b, _ in columns] + [pa.array(np.arange(blue.num_rows))], names=names)
    right = pa.table([g for _, _, g in columns] + [pa.array(np.arange(green.num_rows))], names=names[:-1] + ["_g"])
    return left, right


def _check_unique(table: pa.Table, key: tuple[str, ...], side: str) -> None:
    """Raise ValueError if a key occurs twice; equal key hashes are confirmed by an exact count."""
    hashes = np.sort(row_hashes(table, list(key)))
    if not (hashes[1:] == hashes[:-1]).any():
        return
    counts = table.select(list(key)).group_by(list(key), use_threads=False).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if repeated.num_rows:
        example = {k: _plain(v) for k, v in repeated.slice(0, 1).to_pylist()[0].items() if k != "count_all"}
        rows = pc.sum(repeated["count_all"]).as_py()
        raise ValueError(f"keyed_diff: {repeated.num_rows} duplicate keys in {side} ({rows} rows), e.g. {example}")


def _compare(
    name: str, blue: pa.ChunkedArray, green: pa.ChunkedArray, match: _Match, limit: float
) -> tuple[ColumnDiff, np.ndarray | None]:
    """The column's figures over the pairs, and its mismatch mask if any pair differs."""
    b, g = blue.take(match.blue), green.take(match.green)
    try:
        equal = pc.equal(b, g)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # nested or unlike types: slowly, as Python values
        equal = pa.array([x == y for x, y in zip(b.to_pylist(), g.to_pylist(), strict=True)], pa.bool_())
    if pa.types.is_floating(b.type) and pa.types.is_floating(g.type):
        equal = pc.or_kleene(equal, pc.and_(pc.is_nan(b), pc.is_nan(g)))
    numeric = is_number(b.type) and is_number(g.type)
    gap = _gap(b, g) if numeric and limit > 0 else None
    if gap is not None:
        equal = pc.or_kleene(equal, pc.less_equal(gap, limit))
    match = pc.or_(pc.fill_null(equal, False), pc.and_(pc.is_null(b), pc.is_null(g))) if len(b) else equal
    mismatched = len(b) - pc.sum(match).as_py() if len(b) else 0
    if numeric and gap is None and mismatched:
        gap = _gap(b, g)
    largest = pc.max(gap).as_py() if gap is not None else 0.0 if numeric and b.null_count < len(b) else None
    column = ColumnDiff(name, len(b), len(b) - mismatched, float(limit), None if largest is None else float(largest))
    return column, pc.invert(match).to_numpy(zero_copy_only=False) if mismatched else None


def _gap(b: pa.ChunkedArray, g: pa.ChunkedArray) -> pa.ChunkedArray:
    """|blue - green| in float64 (integers beyond 2**53 round, which a tolerance can live with)."""
    return pc.abs(pc.subtract(pc.cast(b, pa.float64(), safe=False), pc.cast(g, pa.float64(), safe=False)))


def _sample(
    tables: tuple[pa.Table, pa.Table],
    key: tuple[str, ...],
    match: _Match,
    mismatches: dict[str, np.ndarray],
    changed: np.ndarray,
    size: int,
) -> tuple[dict[str, Any], ...]:
    """Up to `size` mismatching rows, the kinds (changed, blue only, green only) in turn."""
    (blue, green), rows_b, rows_g = tables, match.blue[changed], match.green[changed]
    changed_rows = _side_rows(blue, key, rows_b, "changed")
    for name, mask in mismatches.items():
        values = zip(blue[name].take(rows_b).to_pylist(), green[name].take(rows_g).to_pylist(), strict=True)
        for entry, differs, (b, g) in zip(changed_rows, mask[changed], values, strict=True):
            if differs:
                entry |= {f"{name}.blue": _plain(b), f"{name}.green": _plain(g)}
    blue_only = _side_rows(blue, key, match.only_blue[:size], "blue only")
    green_only = _side_rows(green, key, match.only_green[:size], "green only")
    kinds = chain.from_iterable(zip_longest(changed_rows, blue_only, green_only))
    return tuple(row for row in kinds if row is not None)[:size]


def _side_rows(table: pa.Table, key: tuple[str, ...], at: np.ndarray, side: str) -> list[dict[str, Any]]:
    rows = table.select(list(key)).take(at).to_pylist()
    return [{k: _plain(v) for k, v in row.items()} | {"side": side} for row in rows]


def _plain(value: object) -> object:
    """A JSON-serialisable plain Python value: dates and times as ISO strings, durations in seconds."""
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | bytes):
        return str(value) if isinstance(value, Decimal) else value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value
