"""TPC-H v1: Bronze lineitem -> typed, cleaned, deduplicated Silver -> the pricing summary Gold, in DuckDB.

Both transforms take and return Arrow: DuckDB scans the window's Arrow table in place and hands
back Arrow, so a window of 750,000 rows (a month at SF10) never becomes Python objects.
"""

import pyarrow as pa

from declarations.tpch import q1
from declarations.tpch.schemas import SILVER

SILVER_SQL = """
SELECT
    CAST(date_trunc('month', l_shipdate) AS DATE) AS ship_month,
    l_orderkey, l_partkey, l_suppkey, l_linenumber,
    l_quantity, l_extendedprice, l_discount, l_tax,
    upper(trim(l_returnflag)) AS l_returnflag,
    upper(trim(l_linestatus)) AS l_linestatus,
    l_shipdate, l_commitdate, l_receiptdate,
    trim(l_shipinstruct) AS l_shipinstruct,
    upper(trim(l_shipmode)) AS l_shipmode,
    l_comment,
    _batch_id,
    CAST(NULL AS BIGINT) AS _bronze_snapshot_id
FROM bronze
-- A line delivered twice (a re-sent file) keeps its last ingested copy.
QUALIFY row_number() OVER (PARTITION BY l_orderkey, l_linenumber ORDER BY _ingested_at DESC) = 1
ORDER BY l_orderkey, l_linenumber
"""


def to_silver(bronze: pa.Table) -> pa.Table:
    """Clean one month of Bronze rows; the last ingested copy of each (l_orderkey, l_linenumber) wins."""
    with q1.connection() as con:
        con.register("bronze", bronze)
        return q1.query(con, SILVER_SQL, SILVER)


def to_gold(silver: pa.Table) -> pa.Table:
    """Per (l_shipdate, l_returnflag, l_linestatus) of the month: the sums and count Q1 adds up."""
    return q1.gold_rows(silver)
