"""Producer: ingest one source file of a dataset from the landing zone into its Bronze table, then signal."""

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel, Field, field_validator
from pyiceberg.catalog import Catalog

from flows.alerts import DEFAULT_BLOCK, alert_on_failure, send
from flows.common import io_task, materializing, open_lakehouse, platform, publish_ready, run_info
from flows.sla import contract_of, note_signal
from lakeops.build import pipeline
from lakeops.datasets.declaration import Dataset
from lakeops.datasets.names import INGEST_FLOW
from lakeops.datasets.registry import bronze_of
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.ingest import batches, drift, observed
from lakeops.readiness import alerts
from lakeops.readiness.ready import ReadySignal


class IngestParams(BaseModel):
    dataset: str = Field(description="The dataset whose source file to ingest, e.g. flights (set by its deployment).")
    window: str = Field(
        description="The window to ingest (2013-01-02, an hour 2013-01-02T05, a month 1995-03): reads the file "
        "the dataset's source path names for it."
    )
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")

    @field_validator("window", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        """A date (a run started from Python, an older trigger) is its ISO day."""
        return value.isoformat() if isinstance(value, date) else value


@io_task
def read_source_file(landing: str, dataset: Dataset, window: Window) -> batches.RawBatch:
    assert dataset.source is not None
    return batches.read_landed(Path(landing), dataset.source, window)


def land(catalog: Catalog, dataset: Dataset, batch: batches.RawBatch) -> pipeline.Landing:
    """Own rows and late records within the allowance in one commit; too-late records quarantined first."""
    return pipeline.land(catalog, dataset, batch, run_info())


@io_task
def quarantine(catalog: Catalog, dataset: Dataset, batch: batches.RawBatch, error: MalformedBatch) -> int:
    return pipeline.quarantine(catalog, dataset, batch, error, run_info())


@io_task
def alert(message: alerts.Alert, block: str) -> None:
    send(message, block)


@flow(
    name=INGEST_FLOW, flow_run_name="{params.dataset} {params.window}", log_prints=True, on_failure=[alert_on_failure()]
)
def ingest(params: IngestParams) -> ReadySignal:
    """Land a source file in Bronze: late records extend their windows; a malformed file is quarantined whole."""
    registry = platform()
    dataset = registry.dataset(params.dataset)
    bronze = bronze_of(dataset)
    window = Window.parse(params.window, bronze.window.grain)
    lakehouse, catalog = open_lakehouse(params.lakehouse)
    contract = contract_of(str(bronze.table))
    block = contract.alert_block if contract else DEFAULT_BLOCK
    batch = read_source_file(lakehouse.landing, dataset, window)
    try:
        landing = materializing(registry, bronze, lakehouse.catalog_name, land)(catalog, dataset, batch)
    except MalformedBatch as error:
        kept = quarantine(catalog, dataset, batch, error)
        get_run_logger().error("quarantined %s rows of batch %s: %s", kept, batch.batch_id, error)
        if isinstance(error, SchemaDrifted) and contract:
            alert(alerts.schema_drift(dataset, batch, error.drift), block)
        else:
            alert(alerts.malformed(dataset, batch, error, kept), block)
        error.alerted = True  # the failure hook need not repeat it
        raise
    _tell_about_the_batch(dataset, batch, landing, contract, block)
    for signal in landing.extended:
        get_run_logger().info("late records extended window %s: %s rows now", signal.window, signal.row_count)
        publish_ready(catalog, bronze.table, signal)
    published = publish_ready(catalog, bronze.table, landing.own)
    note_signal(catalog, published)
    return published


def _tell_about_the_batch(
    dataset: Dataset, batch: batches.RawBatch, landing: pipeline.Landing, contract, block: str
) -> None:  # noqa: ANN001
    """Alert on what landed but needs a human: too-late records (quarantined), accepted additive drift."""
    if landing.too_late:
        sample = [f"line {n}: {batch.line(n)}" for n in landing.too_late_lines]
        get_run_logger().warning(
            "%s records too late (allowed %s days) quarantined in %s",
            landing.too_late,
            landing.allowed_days,
            dataset.quarantine,
        )
        alert(alerts.too_late(dataset, batch, sample, landing.late_rows, landing.allowed_days), block)
    assert dataset.source is not None
    found = drift.compare(drift.expected(dataset.source), observed.observe(batch))
    if found.drifted and contract:
        alert(alerts.schema_drift(dataset, batch, found), block)
