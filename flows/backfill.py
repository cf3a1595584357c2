"""Backfill: every landed window of a dataset, landing -> each layer it builds, the windows fanned out on Dask.

The flow is the recipe; the work of a window is `lakeops.build.backfill`. Each window is one task on
the flow's task runner (`flows.fanout`). The run publishes no per-window ready events (its own layers'
deployments would rebuild what it just built); it writes each commit's marker files, and its table
artifact lists every window.
"""

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from pydantic import BaseModel, Field

from flows import fanout
from flows.alerts import alert_on_failure
from flows.common import io_options, open_lakehouse, platform, run_info
from lakeops.build import backfill, pipeline
from lakeops.build.validation import validate
from lakeops.datasets.names import BACKFILL_FLOW
from lakeops.datasets.registry import bronze_of
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch
from lakeops.ingest import batches
from lakeops.release import release_log


class BackfillParams(BaseModel):
    dataset: str = Field(description="The dataset to backfill, e.g. tpch (set by its deployment).")
    start: str | None = Field(
        default=None, description="First window (1995-03, 2013-01-02); default: the first landed."
    )
    end: str | None = Field(default=None, description="Last window; default: the last landed.")
    transform_version: str | None = Field(default=None, description="Transform version; default: the live release's.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@task(task_run_name="backfill {dataset} {window}", **io_options())
def backfill_window(lakehouse: str, dataset: str, window: str, version: str) -> backfill.Chain:
    """One window's chain on a worker: land its file, build each layer; a malformed file is quarantined whole."""
    block, catalog = fanout.lakehouse(lakehouse)
    registry = platform()
    declared = registry.dataset(dataset)
    parsed = Window.parse(window, bronze_of(declared).window.grain)
    landing, run = Path(block.landing), run_info()
    try:
        return backfill.run_window(catalog, registry, dataset, landing, parsed, run, version, validate)
    except MalformedBatch as error:
        assert declared.source is not None
        batch = batches.read_landed(landing, declared.source, parsed)
        kept = pipeline.quarantine(catalog, declared, batch, error, run)
        get_run_logger().error("quarantined %s rows of batch %s: %s", kept, batch.batch_id, error)
        raise


@task(task_run_name="rebuild {dataset} {window}", **io_options())
def rebuild_window(lakehouse: str, dataset: str, window: str, version: str) -> int:
    """A window that late records extended after it was built: each layer again from Bronze's head."""
    _, catalog = fanout.lakehouse(lakehouse)
    registry = platform()
    parsed = Window.parse(window, bronze_of(registry.dataset(dataset)).window.grain)
    signals = backfill.build_layers(catalog, registry, dataset, parsed, None, run_info(), version, validate)
    return len(signals)


@flow(
    name=BACKFILL_FLOW,
    flow_run_name="{params.dataset}",
    task_runner=fanout.task_runner(),
    on_failure=[alert_on_failure()],
)
def backfill_dataset(params: BackfillParams) -> list[backfill.Chain]:
    """Every landed window of the dataset through each of its layers, windows side by side on the cluster."""
    lakehouse, catalog = open_lakehouse(params.lakehouse)
    dataset = platform().dataset(params.dataset)
    version = release_log.build_version(catalog, dataset.name, params.transform_version, dataset.default_version)
    windows = backfill.landed_windows(Path(lakehouse.landing), dataset, params.start, params.end)
    logger = get_run_logger()
    logger.info("backfilling %s windows of %s with %s", len(windows), dataset.name, version)
    # The largest window first: the cluster's workers are sized on the first window's peak.
    order = backfill.largest_first(Path(lakehouse.landing), dataset, windows)
    submitted = {w: backfill_window.submit(params.lakehouse, dataset.name, w.key, version) for w in order}
    workers = fanout.fit_to_memory([submitted[order[0]]] if order else [])
    chains, failed = _results(windows, [submitted[w] for w in windows])
    extended = sorted({e for c in chains for e in c.extended})
    for rebuilt in [rebuild_window.submit(params.lakehouse, dataset.name, e, version) for e in extended]:
        rebuilt.result()
    create_table_artifact(
        [{"window": c.window, "rows": c.rows, "seconds": round(c.seconds, 2)} for c in chains]
        + [{"window": w, "rows": 0, "seconds": None, "failed": why} for w, why in failed],
        key=f"backfill-{dataset.name}".lower().replace("_", "-"),
        description=f"backfill of {dataset.name} ({version}): {len(chains)} windows built, {len(failed)} failed"
        + (f", on {workers} Dask workers" if workers else ""),
    )
    rows = sum(c.rows for c in chains)
    logger.info("%s windows, %s rows built; %s extended windows rebuilt", len(chains), rows, len(extended))
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(windows)} windows failed: " + "; ".join(f"{w}: {e}" for w, e in failed)
        )
    return chains


def _results(
    windows: list[Window], futures: list[PrefectFuture[backfill.Chain]]
) -> tuple[list[backfill.Chain], list[tuple[str, str]]]:
    """Each window's chain, or why it failed: one window's failure does not stop the others."""
    chains, failed = [], []
    for window, future in zip(windows, futures, strict=True):
        try:
            chains.append(future.result())
        except Exception as error:  # noqa: BLE001 - reported per window, raised once at the end
            failed.append((window.key, str(error).splitlines()[0] if str(error) else type(error).__name__))
    return chains, failed
