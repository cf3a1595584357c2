"""Producer: ingest one day file from the landing zone into bronze.flights and signal readiness."""

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from flows.common import io_task, open_lakehouse, publish_ready, run_info
from flows.sla import note_signal
from lakeops import ingest, pipeline
from lakeops.datasets import BRONZE_FLIGHTS
from lakeops.errors import MalformedBatch
from lakeops.readiness import ReadySignal
from lakeops.windows import Window


class IngestParams(BaseModel):
    window: date = Field(description="The day to ingest: reads <landing>/flights/<window>.csv.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@io_task
def read_day_file(landing: str, window: Window) -> ingest.RawBatch:
    return ingest.read_raw(Path(landing) / "flights" / f"{window}.csv", window)


@io_task
def commit_bronze(catalog: Catalog, batch: ingest.RawBatch) -> ReadySignal:
    return pipeline.ingest_bronze(catalog, batch, run_info())


@io_task
def quarantine(catalog: Catalog, batch: ingest.RawBatch, error: MalformedBatch) -> int:
    return pipeline.quarantine(catalog, batch, error, run_info())


@flow(name="ingest-bronze-flights", log_prints=True)
def ingest_bronze(params: IngestParams) -> ReadySignal:
    """Land a day file in Bronze; a malformed file is quarantined whole and the run fails."""
    window = Window.parse(params.window)
    lakehouse, catalog = open_lakehouse(params.lakehouse)
    batch = read_day_file(lakehouse.landing, window)
    try:
        signal = commit_bronze(catalog, batch)
    except MalformedBatch as error:
        kept = quarantine(catalog, batch, error)
        get_run_logger().error("quarantined %s rows of batch %s: %s", kept, batch.batch_id, error)
        raise
    published = publish_ready(catalog, BRONZE_FLIGHTS, signal)
    note_signal(catalog, published)
    return published
