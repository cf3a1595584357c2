"""What every flow shares: the I/O retry policy, the lakehouse, run info and signal publishing."""

from collections.abc import Callable
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.events import Event
from prefect.runtime import flow_run
from pyiceberg.catalog import Catalog

from blocks.lakehouse import IcebergLakehouse
from lakeops import lake, pipeline
from lakeops.datasets import TableRef
from lakeops.errors import SignalNotDelivered
from lakeops.failures import IO_JITTER_FACTOR, backoff_delays, retry_condition_fn
from lakeops.pipeline import RunInfo
from lakeops.provenance import code_version
from lakeops.readiness import ReadySignal
from lakeops.validation import ValidationReport, validate


def io_task(fn: Callable[..., Any]) -> Any:
    """A task that touches I/O: transient failures retry with exponential backoff and jitter."""
    return task(
        retries=len(backoff_delays()),
        retry_delay_seconds=backoff_delays(),
        retry_jitter_factor=IO_JITTER_FACTOR,
        retry_condition_fn=retry_condition_fn,
        cache_policy=NO_CACHE,
    )(fn)


@io_task
def open_lakehouse(block_name: str) -> tuple[IcebergLakehouse, Catalog]:
    """The named IcebergLakehouse block and its catalog, with the tables created if missing."""
    lakehouse = IcebergLakehouse.load(block_name)
    catalog = lakehouse.catalog()
    lake.ensure_tables(catalog)
    return lakehouse, catalog


def run_info() -> RunInfo:
    return RunInfo(flow_run_id=str(flow_run.get_id() or "local"), code_version=code_version())


@io_task
def publish_ready(catalog: Catalog, ref: TableRef, signal: ReadySignal) -> ReadySignal:
    """Publish in order: (summary is already committed) marker file, then a confirmed event."""
    lake.write_marker(lake.load(catalog, ref), signal)
    event = Event(
        event=signal.event,
        resource={
            "prefect.resource.id": signal.resource_id,
            "prefect.resource.name": signal.dataset,
            "lakeops.window": signal.window,
        },
        related=_related_run(),
        payload=signal.payload(),
    )
    # emit_event is fire-and-forget; POST /events answers only once the server has the event.
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/events", json=[event.model_dump(mode="json")])
    if response.status_code >= 300:
        raise SignalNotDelivered(f"{signal.event} for {signal.dataset}: HTTP {response.status_code}")
    get_run_logger().info(
        "%s ready: window %s, snapshot %s, %s rows (event %s confirmed)",
        signal.dataset, signal.window, signal.snapshot_id, signal.row_count, event.id,
    )  # fmt: skip
    return signal


@io_task
def certify(catalog: Catalog, ref: TableRef, signal: ReadySignal) -> ValidationReport:
    """Audit the committed window with its GX suite; a pass moves last-known-good (never retried on fail)."""
    report = pipeline.certify(catalog, ref, signal, validate)
    get_run_logger().info("%s window %s passed %s checks of %s", ref, signal.window, report.evaluated, report.suite)
    return report


def _related_run() -> list[dict[str, str]]:
    run_id = flow_run.get_id()
    if not run_id:
        return []
    return [
        {
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": str(flow_run.get_name()),
        }
    ]
