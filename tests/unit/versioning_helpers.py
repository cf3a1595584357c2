"""Helpers shared by the versioning tests: build days with the real pipeline, read refs, fake validators."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.build.validation import ValidationReport
from lakeops.datasets.declaration import Layer
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.ingest import batches
from lakeops.readiness.ready import ReadySignal
from lakeops.settings import LakeSettings

from . import flights, lakes
from .conftest import day_text, edit_cell
from .flights import FLIGHTS_NATURAL_KEY, GOLD_DAILY_DELAYS, REGISTRY, SILVER_FLIGHTS

RUN = pipeline.RunInfo("run-1", "test")
ON_MAIN = pipeline.Target()
DAY_C = date(2013, 1, 4)

SORT_KEYS: dict[TableRef, list[str]] = {
    SILVER_FLIGHTS: ["flight_date", *FLIGHTS_NATURAL_KEY],
    GOLD_DAILY_DELAYS: ["flight_date", "origin"],
}


def lake_settings(home: Path) -> LakeSettings:
    """Settings of a lake in `home`, every location explicit (a module fixture runs before env cleanup)."""
    return LakeSettings(home=home, catalog_uri=None, warehouse=None, landing=None)


def open_lake(home: Path) -> Catalog:
    """A fresh embedded catalog in `home` with every lakeops table, for fixtures wider than one test."""
    settings = lake_settings(home)
    catalog = lakes.open_catalog(settings, settings.catalog_name)
    lake.ensure_tables(catalog, REGISTRY)
    return catalog


def dropper(landing_dir: Path) -> Callable[..., batches.RawBatch]:
    """What the `drop_day` fixture does, for fixtures wider than one test."""

    def drop(day: date, text: str | None = None) -> batches.RawBatch:
        return batches.read_raw(landing.drop_day_file(landing_dir, day, text), Window(day))

    return drop


@dataclass(frozen=True)
class Built:
    """The three readiness signals of one day pushed through Bronze, Silver and Gold."""

    bronze: ReadySignal
    silver: ReadySignal
    gold: ReadySignal


def build_day(
    catalog: Catalog,
    drop_day: Callable,
    day: date,
    text: str | None = None,
    target: pipeline.Target = ON_MAIN,
    version: str = "v1",
    run: pipeline.RunInfo = RUN,
) -> Built:
    """Drop the day's file, ingest it, build Silver from that Bronze snapshot and Gold from that Silver one."""
    window = Window(day)
    bronze = flights.ingest_bronze(catalog, drop_day(day, text), run)
    silver = flights.build_silver(catalog, window, bronze.snapshot_id, run, version=version, target=target)
    gold = flights.build_gold(catalog, window, silver.snapshot_id, run, version=version, target=target)
    return Built(bronze, silver, gold)


def passing(layer: Layer, frame: pa.Table) -> ValidationReport:
    return ValidationReport(f"fake.{layer.table}", len(frame), 3, ())


def failing(layer: Layer, frame: pa.Table) -> ValidationReport:
    return ValidationReport(f"fake.{layer.table}", len(frame), 3, ("fake_check(column='x'): 2 rows",))


@dataclass
class Recorder:
    """A passing validator that remembers the table and frame of every layer it was shown."""

    seen: list[tuple[TableRef, pd.DataFrame]] = field(default_factory=list)

    def __call__(self, layer: Layer, rows: pa.Table) -> ValidationReport:
        frame = rows.to_pandas()
        self.seen.append((layer.table, frame))
        return passing(layer, frame)


def rows_of(catalog: Catalog, ref: TableRef, snapshot_id: int | None = None) -> pd.DataFrame:
    """The whole table as of a snapshot (current when None), read with plain pyiceberg."""
    return catalog.load_table(ref.identifier).scan(snapshot_id=snapshot_id).to_pandas()


def branch_head(catalog: Catalog, ref: TableRef, branch: str) -> int:
    snapshot = catalog.load_table(ref.identifier).snapshot_by_name(branch)
    assert snapshot is not None, f"{ref} has no ref {branch}"
    return snapshot.snapshot_id


def rows_on(catalog: Catalog, ref: TableRef, branch: str) -> pd.DataFrame:
    return rows_of(catalog, ref, branch_head(catalog, ref, branch))


def on_day(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    return frame[frame["flight_date"] == day]


def canonical(frame: pd.DataFrame, ref: TableRef) -> pd.DataFrame:
    """Rows in a fixed order with a fresh index, so two reads of the same data compare equal."""
    return frame.sort_values(SORT_KEYS[ref], kind="stable").reset_index(drop=True)


def snapshot_ids(catalog: Catalog, ref: TableRef) -> list[int]:
    return [s.snapshot_id for s in catalog.load_table(ref.identifier).snapshots()]


def current_id(catalog: Catalog, ref: TableRef) -> int | None:
    snapshot = catalog.load_table(ref.identifier).current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def corrected(day: date) -> str:
    """The day's file as the source re-sends it: one departure delay fixed to 999."""
    return edit_cell(day_text(day), 1, "dep_delay", "999.0")


def expected_gold_v2(source: pd.DataFrame) -> pd.DataFrame:
    """Gold under the v2 rule, computed here row by row: a diverted flight counts as cancelled."""
    out = []
    for origin in sorted(source["origin"].unique()):
        rows = source[source["origin"] == origin]
        cancelled = on_time = 0
        dep_sum = arr_sum = 0.0
        dep_n = arr_n = 0
        for dep_time, dep_delay, arr_delay in zip(rows["dep_time"], rows["dep_delay"], rows["arr_delay"], strict=True):
            departed, arrived = not pd.isna(dep_time), not pd.isna(arr_delay)
            if not departed or not arrived:
                cancelled += 1
            if not pd.isna(dep_delay):
                dep_sum, dep_n = dep_sum + dep_delay, dep_n + 1
            if arrived:
                arr_sum, arr_n = arr_sum + arr_delay, arr_n + 1
                on_time += int(arr_delay <= 15)
        out.append(
            {
                "origin": origin,
                "flights": len(rows),
                "cancelled": cancelled,
                "mean_dep_delay": dep_sum / dep_n,
                "mean_arr_delay": arr_sum / arr_n,
                "on_time_arrivals": on_time,
            }
        )
    return pd.DataFrame(out)
