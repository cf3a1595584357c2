"""The analytics team's table: flights and the weather they left in, per day and origin."""

import pyarrow as pa

_INT = pa.int64()
_FLOAT = pa.float64()

KEY = ("flight_date", "origin")

FLIGHT_WEATHER = pa.schema(
    [
        pa.field("flight_date", pa.date32(), nullable=False),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("flights", _INT, nullable=False),
        pa.field("cancelled", _INT, nullable=False),
        pa.field("mean_dep_delay", _FLOAT),
        pa.field("mean_arr_delay", _FLOAT),
        # Weather of the day at the origin: null when the weather feed had no observation for it.
        pa.field("mean_visib", _FLOAT),
        pa.field("total_precip", _FLOAT),
        pa.field("mean_wind_speed", _FLOAT),
        pa.field("max_wind_gust", _FLOAT),
        pa.field("observations", _INT, nullable=False),
        pa.field("_batch_id", pa.string()),  # the Bronze batches of both inputs the window derives from
    ]
)
