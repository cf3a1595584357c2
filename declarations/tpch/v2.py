"""TPC-H v2: v1's layers rewritten in pyarrow's compute functions and Acero, without DuckDB.

The same rows as v1, by another Arrow engine: the change a blue-green release proves identical before
consumers move (`benchmarks/scale.py` releases it at SF1). Decimal products are computed at the
precisions that hold them (Arrow adds precisions when it multiplies): lineitem's money is at most
decimal(15, 2), a discount or a tax below 1.
"""

import pyarrow as pa
import pyarrow.compute as pc

from declarations.tpch.q1 import GOLD_SCHEMA
from declarations.tpch.schemas import NATURAL_KEY, SILVER

_CLEANED = {"l_returnflag": True, "l_linestatus": True, "l_shipinstruct": False, "l_shipmode": True}  # upper?
_GROUP = ("l_shipdate", "l_returnflag", "l_linestatus")
_ONE = pa.scalar(1, pa.decimal128(3, 2))


def to_silver(bronze: pa.Table) -> pa.Table:
    """Clean one month of Bronze rows; the last ingested copy of each (l_orderkey, l_linenumber) wins."""
    order = [(k, "ascending") for k in NATURAL_KEY] + [("_ingested_at", "descending")]
    rows = bronze.take(pc.sort_indices(bronze, sort_keys=order))
    rows = rows.filter(_first_of_each_key(rows))
    columns = {"ship_month": pc.floor_temporal(rows["l_shipdate"], unit="month")}
    for name in SILVER.names[1:]:
        if name == "_bronze_snapshot_id":
            columns[name] = pa.nulls(rows.num_rows, pa.int64())
        elif name in _CLEANED:
            trimmed = pc.utf8_trim(rows[name].cast(pa.string()), characters=" ")
            columns[name] = pc.utf8_upper(trimmed) if _CLEANED[name] else trimmed
        else:
            columns[name] = rows[name]
    return pa.table(columns).cast(SILVER)


def _first_of_each_key(rows: pa.Table) -> pa.Array:
    """True on the first row of each natural key in rows sorted by it."""
    if rows.num_rows == 0:
        return pa.array([], pa.bool_())
    keys = [rows[k].combine_chunks() for k in NATURAL_KEY]
    changed = [pc.not_equal(k.slice(1), k.slice(0, len(k) - 1)) for k in keys]
    later = changed[0]
    for other in changed[1:]:
        later = pc.or_(later, other)
    return pa.concat_arrays([pa.array([True]), later])


def to_gold(silver: pa.Table) -> pa.Table:
    """Per (l_shipdate, l_returnflag, l_linestatus) of the month: the sums and count Q1 adds up."""
    price = silver["l_extendedprice"]
    disc_price = pc.multiply(price, pc.subtract(_ONE, silver["l_discount"]).cast(pa.decimal128(3, 2)))
    charge = pc.multiply(disc_price.cast(pa.decimal128(20, 4)), pc.add(_ONE, silver["l_tax"]).cast(pa.decimal128(3, 2)))
    measures = pa.table(
        {
            **{k: silver[k] for k in _GROUP},
            "qty": silver["l_quantity"],
            "price": price,
            "disc_price": disc_price,
            "charge": charge,
            "disc": silver["l_discount"],
        }
    )
    sums = [(m, "sum") for m in ("qty", "price", "disc_price", "charge", "disc")]
    grouped = measures.group_by(list(_GROUP), use_threads=False).aggregate([*sums, ("qty", "count")])
    grouped = grouped.sort_by([(k, "ascending") for k in _GROUP])
    names = {"qty_sum": "sum_qty", "price_sum": "sum_base_price", "disc_price_sum": "sum_disc_price"}
    names |= {"charge_sum": "sum_charge", "disc_sum": "sum_disc", "qty_count": "count_order"}
    columns = {"ship_month": pc.floor_temporal(grouped["l_shipdate"], unit="month")}
    columns |= {name: grouped[name] for name in _GROUP}
    columns |= {new: grouped[old] for old, new in names.items()}
    return pa.table(columns).select(GOLD_SCHEMA.names).cast(GOLD_SCHEMA)
