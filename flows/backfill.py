"""Backfill: every landed window of a dataset, landing -> each layer it builds, the windows fanned out on Dask.

The flow is the recipe; the work of a window is `lakeops.build.backfill`. Each task on the flow's task
runner (`flows.fanout`) runs consecutive windows one after the other (the first task the largest window
alone, which sizes the cluster); the tasks run side by side. The run publishes no per-window ready
events (its own layers' deployments would rebuild what it just built); it writes each commit's marker
files, and its table artifact lists every window.
"""

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import task_run
from prefect.states import State
from pydantic import BaseModel, Field

from flows import fanout
from flows.alerts import alert_on_failure
from flows.common import io_options, open_lakehouse, platform, run_info
from lakeops.build import backfill
from lakeops.build.backfill import Failed
from lakeops.build.validation import validate
from lakeops.datasets.names import BACKFILL_FLOW
from lakeops.datasets.registry import bronze_of
from lakeops.datasets.windows import Window
from lakeops.release import release_log


class BackfillParams(BaseModel):
    dataset: str = Field(description="The dataset to backfill, e.g. tpch (set by its deployment).")
    start: str | None = Field(
        default=None, description="First window (1995-03, 2013-01-02); default: the first landed."
    )
    end: str | None = Field(default=None, description="Last window; default: the last landed.")
    transform_version: str | None = Field(default=None, description="Transform version; default: the live release's.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


def _task_name() -> str:
    windows = task_run.parameters["windows"]
    last = f"..{windows[-1]}" if len(windows) > 1 else ""
    return f"backfill {task_run.parameters['dataset']} {windows[0]}{last}"


@task(task_run_name=_task_name, **io_options())
def backfill_windows(lakehouse: str, dataset: str, windows: list[str], version: str) -> list[backfill.Chain | Failed]:
    """A run of consecutive windows' chains on a worker, one window at a time: land each file, build each layer.
    A malformed file is quarantined whole and reported with the window, as a failed suite is."""
    block, catalog = fanout.lakehouse(lakehouse)
    registry = platform()
    grain = bronze_of(registry.dataset(dataset)).window.grain
    parsed = [Window.parse(w, grain) for w in windows]
    done = backfill.run_windows(catalog, registry, dataset, Path(block.landing), parsed, run_info(), version, validate)
    for failed in (d for d in done if isinstance(d, Failed)):
        get_run_logger().error("window %s failed: %s", failed.window, failed.reason)
    return done


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
    # The largest window first, alone: the cluster's workers are sized on the first window's peak.
    tasks = backfill.in_tasks(backfill.largest_first(Path(lakehouse.landing), dataset, windows), fanout.planned())
    calls = [(params.lakehouse, dataset.name, [w.key for w in t], version) for t in tasks]
    submitted, workers = fanout.run_fitted(backfill_windows, calls)
    chains, failed = _results(tasks, submitted)
    extended = sorted({e for c in chains for e in c.extended})
    for rebuilt in fanout.run_each(rebuild_window, [(params.lakehouse, dataset.name, e, version) for e in extended]):
        rebuilt.result()
    create_table_artifact(
        [{"window": c.window, "rows": c.rows, "seconds": round(c.seconds, 2)} for c in chains]
        + [{"window": w, "rows": 0, "seconds": None, "failed": why} for w, why in failed],
        key=f"backfill-{dataset.name}".lower().replace("_", "-"),
        description=f"backfill of {dataset.name} ({version}): {len(chains)} windows built, {len(failed)} failed"
        + {None: "", 0: ", in the flow's own process (one window fills its memory)"}.get(
            workers, f", on {workers} Dask workers"
        ),
    )
    rows = sum(c.rows for c in chains)
    logger.info("%s windows, %s rows built; %s extended windows rebuilt", len(chains), rows, len(extended))
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(windows)} windows failed: " + "; ".join(f"{w}: {e}" for w, e in failed)
        )
    return chains


def _results(
    tasks: list[list[Window]],
    futures: list[PrefectFuture[list[backfill.Chain | Failed]] | State[list[backfill.Chain | Failed]]],
) -> tuple[list[backfill.Chain], list[tuple[str, str]]]:
    """Each window's chain, or why it failed, in window order: one window's failure does not stop the others.
    A task that failed whole (its retries spent) names each of its windows."""
    chains, failed = [], []
    for windows, future in zip(tasks, futures, strict=True):
        try:
            for done in future.result():
                if isinstance(done, Failed):
                    failed.append((done.window, done.reason))
                else:
                    chains.append(done)
        except Exception as error:  # noqa: BLE001 - reported per window, raised once at the end
            why = str(error).splitlines()[0] if str(error) else type(error).__name__
            failed += [(w.key, f"its task failed: {why}") for w in windows]
    return sorted(chains, key=lambda c: c.window), sorted(failed)
