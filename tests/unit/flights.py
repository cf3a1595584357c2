"""The flights dataset as the unit tests use it: its registry, tables, and the core's steps bound to it."""

from declarations import flights as declared
from lakeops.build import pipeline
from lakeops.build.pipeline import RunInfo, Target
from lakeops.datasets.declaration import LatePolicy
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch
from lakeops.iceberg import lake
from lakeops.ingest import batches
from lakeops.readiness.ready import ReadySignal

FLIGHTS = declared.DATASET
REGISTRY = Registry((FLIGHTS,))
BRONZE, SILVER, GOLD = (FLIGHTS.layer(name) for name in ("bronze", "silver", "gold"))
BRONZE_FLIGHTS, SILVER_FLIGHTS, GOLD_DAILY_DELAYS = BRONZE.table, SILVER.table, GOLD.table
QUARANTINE_FLIGHTS = FLIGHTS.quarantine
ALL_TABLES = tuple(lake.table_specs(REGISTRY))
MEDALLION = (BRONZE_FLIGHTS, SILVER_FLIGHTS, GOLD_DAILY_DELAYS)
FLIGHTS_NATURAL_KEY = FLIGHTS.source.natural_key
SOURCE = FLIGHTS.source


def parse(batch: batches.RawBatch, **options: bool) -> object:
    return batches.parse(batch, SOURCE, **options)


def land(
    catalog,
    batch: batches.RawBatch,
    run: RunInfo,
    policy: LatePolicy | None = None,
    accept_additive: bool | None = None,
) -> pipeline.Landing:
    return pipeline.land(catalog, FLIGHTS, batch, run, policy, accept_additive)


def ingest_bronze(catalog, batch: batches.RawBatch, run: RunInfo) -> ReadySignal:
    """Land a file that holds only its own window's rows (no late records allowed)."""
    return land(catalog, batch, run, LatePolicy()).own


def quarantine(catalog, batch: batches.RawBatch, error: MalformedBatch, run: RunInfo) -> int:
    return pipeline.quarantine(catalog, FLIGHTS, batch, error, run)


def build_silver(
    catalog,
    window: Window,
    bronze_snapshot_id: int,
    run: RunInfo,
    stale: bool = False,
    version: str | None = None,
    *,
    target: Target | None = None,
    carry_from: Window | None = None,
) -> ReadySignal:
    inputs = {"flights.bronze": bronze_snapshot_id}
    return pipeline.build(
        catalog,
        REGISTRY,
        "flights.silver",
        window,
        inputs,
        run,
        stale,
        version,
        target=target or Target(),
        carry_from=carry_from,
    )


def build_gold(
    catalog,
    window: Window,
    silver_snapshot_id: int,
    run: RunInfo,
    stale: bool = False,
    version: str | None = None,
    *,
    target: Target | None = None,
) -> ReadySignal:
    inputs = {"flights.silver": silver_snapshot_id}
    return pipeline.build(
        catalog, REGISTRY, "flights.gold", window, inputs, run, stale, version, target=target or Target()
    )
