"""Producer: ingest one day file from the landing zone into bronze.flights and signal readiness."""

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from flows.alerts import alert_on_failure, send
from flows.common import io_task, open_lakehouse, publish_ready, run_info
from flows.sla import contract_of, note_signal
from lakeops.build import pipeline
from lakeops.datasets.names import BRONZE_FLIGHTS, QUARANTINE_FLIGHTS
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.healing import alerts
from lakeops.ingest import batches, drift
from lakeops.ingest.lateness import LatePolicy
from lakeops.readiness.contracts import ReadinessContract
from lakeops.readiness.ready import ReadySignal

PRODUCER = "ingest-bronze-flights/lakeops"


class IngestParams(BaseModel):
    window: date = Field(description="The day to ingest: reads <landing>/flights/<window>.csv.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@io_task
def read_day_file(landing: str, window: Window) -> batches.RawBatch:
    return batches.read_raw(Path(landing) / "flights" / f"{window}.csv", window)


@io_task
def land(catalog: Catalog, batch: batches.RawBatch, contract: ReadinessContract | None) -> pipeline.Landing:
    """Own rows and late records within the allowance in one commit; too-late records quarantined first."""
    policy = contract.late_policy if contract else LatePolicy()
    accept = contract.accept_additive_drift if contract else False
    return pipeline.land(catalog, batch, run_info(), policy, accept)


@io_task
def quarantine(catalog: Catalog, batch: batches.RawBatch, error: MalformedBatch) -> int:
    return pipeline.quarantine(catalog, batch, error, run_info())


@io_task
def alert(message: alerts.Alert, contract: ReadinessContract | None) -> None:
    send(message, contract.alert_block) if contract else send(message)


@flow(name="ingest-bronze-flights", log_prints=True, on_failure=[alert_on_failure()])
def ingest_bronze(params: IngestParams) -> ReadySignal:
    """Land a day file in Bronze: late records extend their windows; a malformed file is quarantined whole."""
    window = Window.parse(params.window)
    lakehouse, catalog = open_lakehouse(params.lakehouse)
    contract = contract_of(BRONZE_FLIGHTS.identifier)
    owner = contract.owner if contract else "data-platform"
    batch = read_day_file(lakehouse.landing, window)
    try:
        landing = land(catalog, batch, contract)
    except MalformedBatch as error:
        kept = quarantine(catalog, batch, error)
        get_run_logger().error("quarantined %s rows of batch %s: %s", kept, batch.batch_id, error)
        if isinstance(error, SchemaDrifted) and contract:
            alert(alerts.schema_drift(contract, batch, error.drift), contract)
        else:
            alert(alerts.malformed(str(BRONZE_FLIGHTS), owner, PRODUCER, batch, error, kept), contract)
        error.alerted = True  # the failure hook need not repeat it
        raise
    _tell_about_the_batch(batch, landing, contract, owner)
    for signal in landing.extended:
        get_run_logger().info("late records extended window %s: %s rows now", signal.window, signal.row_count)
        publish_ready(catalog, BRONZE_FLIGHTS, signal)
    published = publish_ready(catalog, BRONZE_FLIGHTS, landing.own)
    note_signal(catalog, published)
    return published


def _tell_about_the_batch(
    batch: batches.RawBatch, landing: pipeline.Landing, contract: ReadinessContract | None, owner: str
) -> None:
    """Alert on what landed but needs a human: too-late records (quarantined), accepted additive drift."""
    if landing.too_late:
        lines = batch.lines
        sample = [f"line {n}: {lines[n - 1]}" for n in landing.too_late_lines]
        get_run_logger().warning(
            "%s records too late (allowed %s days) quarantined in %s",
            landing.too_late,
            landing.allowed_days,
            QUARANTINE_FLIGHTS,
        )
        alert(
            alerts.too_late(
                str(BRONZE_FLIGHTS), owner, PRODUCER, batch, sample, landing.late_rows, landing.allowed_days
            ),
            contract,
        )
    found = drift.compare(drift.FLIGHTS_SOURCE, drift.observe(batch))
    if found.drifted and contract:
        alert(alerts.schema_drift(contract, batch, found), contract)
