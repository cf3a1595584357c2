"""A dataset declared with hour windows goes through the same core as the daily ones: land, late records by
the hour, a row from a later hour refused, Silver and Gold per hour, replay."""

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from lakeops.build import pipeline
from lakeops.datasets.declaration import Dataset, LatePolicy, Layer, Source
from lakeops.datasets.engines import on_pandas
from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window, WindowColumn
from lakeops.errors import MalformedBatch
from lakeops.iceberg import lake
from lakeops.ingest import batches
from lakeops.settings import LakeSettings
from lakeops.versioning import replay

PARTS = WindowColumn(parts=("year", "month", "day", "hour"), grain="hour")
HOUR = WindowColumn("reading_hour", grain="hour")
COLUMNS = {"sensor": pa.string(), "year": pa.int64(), "month": pa.int64(), "day": pa.int64(), "hour": pa.int64()}
SOURCE = Source(
    path="sensors/{window}.csv",
    columns={**COLUMNS, "minute": pa.int64(), "value": pa.float64()},
    natural_key=("sensor", "year", "month", "day", "hour", "minute"),
    event_time=PARTS,
    lateness=LatePolicy(allowed_days=1),
)
SILVER = pa.schema(
    [pa.field("reading_hour", pa.timestamp("us", tz="UTC"), nullable=False)]
    + [pa.field(n, t) for n, t in SOURCE.columns.items()]
    + [pa.field("_batch_id", pa.string(), nullable=False), pa.field("_bronze_snapshot_id", pa.int64())]
)
HOURLY = pa.schema(
    [
        pa.field("reading_hour", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("sensor", pa.string(), nullable=False),
        pa.field("readings", pa.int64(), nullable=False),
        pa.field("mean_value", pa.float64()),
        pa.field("_batch_id", pa.string()),
    ]
)


def to_silver(bronze: pd.DataFrame) -> pd.DataFrame:
    hour = pd.to_datetime(bronze[["year", "month", "day", "hour"]].astype("int64"), utc=True)
    return bronze.assign(reading_hour=hour).drop_duplicates(list(SOURCE.natural_key), keep="last")


def hourly(silver: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    rows = silver.assign(value=silver["value"] * scale)
    return rows.groupby(["reading_hour", "sensor"], as_index=False).agg(
        readings=("value", "size"), mean_value=("value", "mean")
    )


SENSORS = Dataset(
    name="sensors",
    owner="plant-team",
    source=SOURCE,
    layers=(
        Layer("bronze", TableRef("bronze", "sensors"), SOURCE.bronze_schema(), PARTS, key=SOURCE.natural_key),
        Layer(
            "silver",
            TableRef("silver", "sensors"),
            SILVER,
            HOUR,
            key=SOURCE.natural_key,
            inputs=("sensors.bronze",),
            transforms={"v1": on_pandas(to_silver), "v2": on_pandas(to_silver)},
            lineage="_bronze_snapshot_id",
        ),
        Layer(
            "gold",
            TableRef("gold", "sensor_hours"),
            HOURLY,
            HOUR,
            key=("reading_hour", "sensor"),
            inputs=("sensors.silver",),
            transforms={"v1": on_pandas(hourly), "v2": on_pandas(lambda silver: hourly(silver, scale=2.0))},
        ),
    ),
    release=("silver", "gold"),
)
REGISTRY = Registry((SENSORS,))
RUN = pipeline.RunInfo("run-1", "test")
H5 = Window(date(2024, 3, 1), 5)


def readings(hour: datetime, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sensor": "s1",
            "year": hour.year,
            "month": hour.month,
            "day": hour.day,
            "hour": hour.hour,
            "minute": range(len(values)),
            "value": values,
        }
    )


@pytest.fixture
def catalog(tmp_path: Path):  # noqa: ANN201
    opened = lake.open_catalog("test", lake.embedded_properties(LakeSettings(home=tmp_path / "lake")))
    lake.ensure_tables(opened, REGISTRY)
    return opened


def drop(tmp_path: Path, window: Window, frame: pd.DataFrame) -> batches.RawBatch:
    path = tmp_path / "landing" / SOURCE.file(window.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(frame.to_csv(index=False))
    return batches.read_raw(path, window)


def test_an_hour_file_lands_its_hour_and_late_rows_of_the_previous_hour_extend_it(catalog, tmp_path):
    h4 = datetime(2024, 3, 1, 4)
    first = pipeline.land(catalog, SENSORS, drop(tmp_path, Window(h4.date(), 4), readings(h4, [1.0, 2.0])), RUN)
    assert (first.own.window, first.own.row_count) == ("2024-03-01T04", 2)

    late = readings(h4, [5.0]).assign(minute=30)
    landed = pipeline.land(
        catalog, SENSORS, drop(tmp_path, H5, pd.concat([readings(h4 + timedelta(hours=1), [3.0]), late])), RUN
    )
    assert landed.own.window == "2024-03-01T05" and landed.own.row_count == 1
    assert [(s.window, s.row_count) for s in landed.extended] == [("2024-03-01T04", 3)]


def test_a_row_of_a_later_hour_is_malformed_naming_the_hour_column(catalog, tmp_path):
    later = pd.concat([readings(datetime(2024, 3, 1, 5), [1.0]), readings(datetime(2024, 3, 1, 6), [2.0])])
    with pytest.raises(MalformedBatch, match="after window 2024-03-01T05") as caught:
        pipeline.land(catalog, SENSORS, drop(tmp_path, H5, later), RUN)
    assert caught.value.column == "hour" and caught.value.row == 3


def test_silver_and_gold_are_built_per_hour_and_replayed_per_hour(catalog, tmp_path):
    for hour, values in ((4, [1.0, 3.0]), (5, [10.0, 20.0, 30.0])):
        moment = datetime(2024, 3, 1, hour)
        window = Window(moment.date(), hour)
        bronze = pipeline.land(catalog, SENSORS, drop(tmp_path, window, readings(moment, values)), RUN).own
        silver = pipeline.build(
            catalog, REGISTRY, "sensors.silver", window, {"sensors.bronze": bronze.snapshot_id}, RUN
        )
        pipeline.build(catalog, REGISTRY, "sensors.gold", window, {"sensors.silver": silver.snapshot_id}, RUN)
    gold = SENSORS.layer("gold")
    table = lake.load(catalog, gold.table)
    five = lake.read(table, gold.window.filter(H5))
    assert five[["readings", "mean_value"]].values.tolist() == [[3, 20.0]]
    assert lake.windows_in(table, gold.window) == {Window(date(2024, 3, 1), 4), H5}

    planned = replay.plan(catalog, REGISTRY, "sensors", "v2")
    assert [s.window.key for s in planned.sources] == ["2024-03-01T04", "2024-03-01T05"]
    result = replay.run(catalog, REGISTRY, planned, RUN)
    assert len(result.replayed) == 2
    table = lake.load(catalog, gold.table)
    on_branch = lake.read(table, gold.window.filter(H5), result.heads["gold.sensor_hours"])
    assert on_branch["mean_value"].tolist() == [40.0]  # v2 doubles the readings
    assert lake.read(table, gold.window.filter(H5))["mean_value"].tolist() == [20.0]  # main did not move
