"""TPC-H Q1 (pricing summary report) two ways: on raw lineitem Parquet, and from the `tpch` Gold table.

Gold holds one row per (l_shipdate, l_returnflag, l_linestatus) with additive measures only, so Q1 for
any cutoff date is a sum over Gold rows, and Gold built month by month equals Gold built at once.

Comparing the two: flags, statuses, the four sums and count_order are exact (Python Decimal / int; both
sides have the types of `Q1_SCHEMA`). The averages cannot be: DuckDB's avg() of a decimal is a double it
computes its own way, Gold's is the exact sum, as a double, over the count. `same_q1` accepts averages
that agree within a relative `AVG_REL_TOL` (1e-12; both are a few roundings of ~1e-16 off the exact
quotient). The exact sums and counts are the sharp check: at SF10 a cent off in one row moves an
average by ~1e-14, below the tolerance, but is still a difference in a sum.
"""

import math
import os
import tempfile
import threading
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from declarations.tpch.generate import parquet_source

_KEY = pa.string()
_LOCK = threading.Lock()
MEMORY_LIMIT = "256MB"


def _money(scale: int) -> pa.Decimal128Type:
    return pa.decimal128(38, scale)


# Per (l_shipdate, l_returnflag, l_linestatus): the sums are DuckDB's sum() types of lineitem's
# decimal(15, 2) columns and their products, so summing Gold again never rounds.
GOLD_SCHEMA = pa.schema(
    [
        pa.field("ship_month", pa.date32(), nullable=False),
        pa.field("l_shipdate", pa.date32(), nullable=False),
        pa.field("l_returnflag", _KEY, nullable=False),
        pa.field("l_linestatus", _KEY, nullable=False),
        pa.field("sum_qty", _money(2)),
        pa.field("sum_base_price", _money(2)),
        pa.field("sum_disc_price", _money(4)),
        pa.field("sum_charge", _money(6)),
        pa.field("sum_disc", _money(2)),
        pa.field("count_order", pa.int64(), nullable=False),
    ]
)
GOLD_COLUMNS = tuple(GOLD_SCHEMA.names)

# The result of Q1 (the types DuckDB gives the standard query over decimal(15, 2) columns).
Q1_SCHEMA = pa.schema(
    [
        pa.field("l_returnflag", _KEY),
        pa.field("l_linestatus", _KEY),
        pa.field("sum_qty", _money(2)),
        pa.field("sum_base_price", _money(2)),
        pa.field("sum_disc_price", _money(4)),
        pa.field("sum_charge", _money(6)),
        pa.field("avg_qty", pa.float64()),
        pa.field("avg_price", pa.float64()),
        pa.field("avg_disc", pa.float64()),
        pa.field("count_order", pa.int64()),
    ]
)
Q1_KEY = ("l_returnflag", "l_linestatus")
AVG_COLUMNS = ("avg_qty", "avg_price", "avg_disc")
AVG_REL_TOL = 1e-12

Q1_SQL = """
SELECT
    l_returnflag,
    l_linestatus,
    sum(l_quantity) AS sum_qty,
    sum(l_extendedprice) AS sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
    avg(l_quantity) AS avg_qty,
    avg(l_extendedprice) AS avg_price,
    avg(l_discount) AS avg_disc,
    count(*) AS count_order
FROM lineitem
WHERE l_shipdate <= $cutoff
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
"""

GOLD_SQL = """
SELECT
    CAST(date_trunc('month', l_shipdate) AS DATE) AS ship_month,
    l_shipdate,
    l_returnflag,
    l_linestatus,
    sum(l_quantity) AS sum_qty,
    sum(l_extendedprice) AS sum_base_price,
    sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
    sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
    sum(l_discount) AS sum_disc,
    count(*) AS count_order
FROM lineitem
GROUP BY l_shipdate, l_returnflag, l_linestatus
ORDER BY l_shipdate, l_returnflag, l_linestatus
"""

# Averages from the exact sums: the sum as a double over the count. The count is a HUGEINT sum in DuckDB,
# which Arrow would get as decimal(38, 0), hence the BIGINT cast.
Q1_FROM_GOLD_SQL = """
SELECT
    l_returnflag,
    l_linestatus,
    sum(sum_qty) AS sum_qty,
    sum(sum_base_price) AS sum_base_price,
    sum(sum_disc_price) AS sum_disc_price,
    sum(sum_charge) AS sum_charge,
    CAST(sum(sum_qty) AS DOUBLE) / sum(count_order) AS avg_qty,
    CAST(sum(sum_base_price) AS DOUBLE) / sum(count_order) AS avg_price,
    CAST(sum(sum_disc) AS DOUBLE) / sum(count_order) AS avg_disc,
    CAST(sum(count_order) AS BIGINT) AS count_order
FROM gold
WHERE l_shipdate <= $cutoff
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
"""


def duckdb_q1(parquet: Path | str, cutoff: date) -> pa.Table:
    """TPC-H Q1 straight on lineitem Parquet (a file, a folder of files or a glob) for rows shipped by `cutoff`."""
    sql = f"WITH lineitem AS (SELECT * FROM read_parquet($src))\n{Q1_SQL}"
    with connection() as con:
        return query(con, sql, Q1_SCHEMA, src=parquet_source(parquet), cutoff=cutoff)


def gold_rows(lineitem: pa.Table) -> pa.Table:
    """The Gold rows of Silver-like lineitem rows (any window: Gold of disjoint windows concatenates)."""
    with connection() as con:
        con.register("lineitem", lineitem)
        return query(con, GOLD_SQL, GOLD_SCHEMA)


def q1_from_gold(gold: pa.Table, cutoff: date) -> pa.Table:
    """TPC-H Q1 for rows shipped by `cutoff`, from Gold rows alone; the columns of `duckdb_q1`."""
    with connection() as con:
        con.register("gold", gold)
        return query(con, Q1_FROM_GOLD_SQL, Q1_SCHEMA, cutoff=cutoff)


def same_q1(a: pa.Table, b: pa.Table) -> list[str]:
    """How two Q1 results differ, one readable line per difference; empty when they agree.

    Groups are matched by (l_returnflag, l_linestatus); sums and counts must be equal, averages within
    `AVG_REL_TOL`.
    """
    if a.column_names != b.column_names:
        return [f"columns differ: {a.column_names} != {b.column_names}"]
    rows_a, rows_b = _by_group(a), _by_group(b)
    diffs = [f"group {k} only in the first result" for k in rows_a.keys() - rows_b.keys()]
    diffs += [f"group {k} only in the second result" for k in rows_b.keys() - rows_a.keys()]
    for key in sorted(rows_a.keys() & rows_b.keys()):
        diffs += _row_diffs(key, rows_a[key], rows_b[key])
    return diffs


def connection() -> duckdb.DuckDBPyConnection:
    """A new connection of its own (registered tables are private to it) to this process's database.

    Opening an in-memory database costs ~40 ms, a connection to an open one ~10 us; Gold is built per
    window, so every call shares one database. Keyed by pid: a forked child must not reuse its parent's.
    """
    with _LOCK:
        return _database(os.getpid()).cursor()


@cache
def _database(pid: int) -> duckdb.DuckDBPyConnection:
    # A window's transform stays within this (DuckDB spills past it): one window at a time is the budget.
    # Past the limit DuckDB spills, by default into ./.tmp of whatever the cwd is (a worker's: the project).
    spill = Path(tempfile.gettempdir()) / f"lakeops-duckdb-{pid}"
    return duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(spill)})


def query(con: duckdb.DuckDBPyConnection, sql: str, schema: pa.Schema, **params: Any) -> pa.Table:
    """`sql` on `con` as an Arrow table cast to `schema`.

    The cast is safe: it fails rather than round a decimal, or let a null into a non-nullable field (a
    null group key from Silver would otherwise become a Gold row).
    """
    table: pa.Table = con.sql(sql, params=params or None).to_arrow_table()
    return table.cast(schema)


def _by_group(q1: pa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in Q1_KEY): row for row in q1.to_pylist()}


def _row_diffs(key: tuple[Any, ...], a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    group = "/".join(map(str, key))
    return [f"{group} {col}: {a[col]!r} != {b[col]!r}" for col in a if not _same_value(col, a[col], b[col])]


def _same_value(column: str, x: Any, y: Any) -> bool:
    if column in AVG_COLUMNS and x is not None and y is not None:
        return math.isclose(x, y, rel_tol=AVG_REL_TOL, abs_tol=0.0)
    return bool(x == y)
