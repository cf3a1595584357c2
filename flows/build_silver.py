"""Consumer: rebuild one window of silver.flights from the Bronze snapshot its event names."""

from prefect import flow
from pyiceberg.catalog import Catalog

from flows.alerts import alert_on_failure
from flows.common import certify, io_task, open_lakehouse, publish_ready, run_info
from flows.params import BuildParams
from flows.sla import resolve_if_caught_up
from lakeops.build import pipeline
from lakeops.datasets.names import BRONZE_FLIGHTS, FLIGHTS, SILVER_FLIGHTS
from lakeops.datasets.windows import Window
from lakeops.readiness.ready import ReadySignal
from lakeops.release import release_log


@io_task
def build(catalog: Catalog, params: BuildParams) -> ReadySignal:
    return pipeline.build_silver(
        catalog,
        Window.parse(params.window),
        params.snapshot_id,
        run_info(),
        stale=params.stale,
        version=release_log.build_version(catalog, FLIGHTS, params.transform_version),
        carry_from=Window.parse(params.fallback_window) if params.fallback_window else None,
    )


@flow(name="build-silver-flights", on_failure=[alert_on_failure()])
def build_silver(params: BuildParams) -> ReadySignal:
    """Read bronze.flights at exactly `snapshot_id`, replace Silver's window, signal readiness, then audit."""
    _, catalog = open_lakehouse(params.lakehouse)
    signal = publish_ready(catalog, SILVER_FLIGHTS, build(catalog, params))
    certify(catalog, SILVER_FLIGHTS, signal)
    resolve_if_caught_up(catalog, BRONZE_FLIGHTS.identifier, signal)
    return signal
