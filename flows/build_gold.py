"""Consumer: rebuild one window of gold.daily_delays from the Silver snapshot its event names."""

from prefect import flow
from pyiceberg.catalog import Catalog

from flows.alerts import alert_on_failure
from flows.common import certify, io_task, open_lakehouse, publish_ready, run_info
from flows.params import BuildParams
from lakeops.build import pipeline
from lakeops.datasets.names import FLIGHTS, GOLD_DAILY_DELAYS
from lakeops.datasets.windows import Window
from lakeops.readiness.ready import ReadySignal
from lakeops.release import release_log


@io_task
def build(catalog: Catalog, params: BuildParams) -> ReadySignal:
    return pipeline.build_gold(
        catalog,
        Window.parse(params.window),
        params.snapshot_id,
        run_info(),
        stale=params.stale,
        version=release_log.build_version(catalog, FLIGHTS, params.transform_version),
    )


@flow(name="build-gold-daily-delays", on_failure=[alert_on_failure()])
def build_gold(params: BuildParams) -> ReadySignal:
    """Read silver.flights at exactly `snapshot_id`, replace Gold's window, signal readiness, then audit."""
    _, catalog = open_lakehouse(params.lakehouse)
    signal = publish_ready(catalog, GOLD_DAILY_DELAYS, build(catalog, params))
    certify(catalog, GOLD_DAILY_DELAYS, signal)
    return signal
