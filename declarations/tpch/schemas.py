"""The tpch dataset's tables: the lineitem source contract and the Arrow schema each layer writes.

Money is decimal(15, 2) from the source to Gold, never float: Q1 from Gold is exact to the cent.
"""

import pyarrow as pa

from declarations.tpch.q1 import GOLD_SCHEMA

_INT = pa.int64()
_MONEY = pa.decimal128(15, 2)
_DATE = pa.date32()
_STR = pa.string()

# What tpchgen-cli writes (strings as string_view, l_linenumber as int32): the contract's types are those
# a reader of any engine gets; ingest casts to them.
SOURCE_COLUMNS: dict[str, pa.DataType] = {
    "l_orderkey": _INT,
    "l_partkey": _INT,
    "l_suppkey": _INT,
    "l_linenumber": _INT,
    "l_quantity": _MONEY,
    "l_extendedprice": _MONEY,
    "l_discount": _MONEY,
    "l_tax": _MONEY,
    "l_returnflag": _STR,
    "l_linestatus": _STR,
    "l_shipdate": _DATE,
    "l_commitdate": _DATE,
    "l_receiptdate": _DATE,
    "l_shipinstruct": _STR,
    "l_shipmode": _STR,
    "l_comment": _STR,
}
NATURAL_KEY = ("l_orderkey", "l_linenumber")
NON_NULL = tuple(name for name in SOURCE_COLUMNS if name not in NATURAL_KEY and name != "l_comment")

SILVER = pa.schema(
    [
        pa.field("ship_month", _DATE, nullable=False),  # the window, and the partition
        *[pa.field(name, typ, nullable=name == "l_comment") for name, typ in SOURCE_COLUMNS.items()],
        pa.field("_batch_id", _STR, nullable=False),
        # Row-level lineage: the Bronze snapshot the window was built from (what replay re-reads).
        pa.field("_bronze_snapshot_id", pa.int64()),
    ]
)
GOLD = GOLD_SCHEMA
GOLD_KEY = ("l_shipdate", "l_returnflag", "l_linestatus")
