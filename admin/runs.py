"""Following a window through the pipeline: the runs its readiness events started."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments import run_deployment
from pyiceberg.catalog import Catalog
from pyiceberg.table.snapshots import Snapshot

from lakeops.datasets.names import BRONZE_FLIGHTS, GOLD_DAILY_DELAYS, SILVER_FLIGHTS, TableRef
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake

DEPLOYMENT = "lakeops"  # the deployment name every flow has in prefect.yaml


def run_producer(day: date, deployment: str = DEPLOYMENT) -> FlowRun:
    """Run the producer deployment for one day and wait for it to finish."""
    params = {"params": {"window": day.isoformat()}}
    return run_deployment(f"ingest-bronze-flights/{deployment}", parameters=params, timeout=300, poll_interval=0.5)


def deployment_id(name: str) -> UUID:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name).id


def wait_for_run(deployment: str, matches: Callable[[FlowRun], bool], timeout: float = 120) -> FlowRun:
    """The newest run of `deployment` for which `matches` holds, once it reached a final state."""
    dep_id = deployment_id(deployment)
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[dep_id])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=50,
            )
            found = [run for run in runs if matches(run)]
            if found and found[0].state and found[0].state.is_final():
                return found[0]
            time.sleep(0.5)
    raise TimeoutError(f"no finished run of {deployment} matched within {timeout:.0f} s")


def consumer_of(snapshot_id: int, window: Window, after: FlowRun) -> Callable[[FlowRun], bool]:
    """Matches a consumer run created after `after` for the event naming `snapshot_id` and `window`."""

    def matches(run: FlowRun) -> bool:
        params = run.parameters.get("params", {})
        newer = run.created is not None and after.created is not None and run.created > after.created
        return newer and params.get("snapshot_id") == snapshot_id and params.get("window") == window.key

    return matches


def run_url(ui_url: str, run: FlowRun) -> str:
    return f"{ui_url}/runs/flow-run/{run.id}"


@dataclass(frozen=True)
class WindowTrace:
    """One window's way through the pipeline: the runs and the snapshots they committed."""

    window: Window
    producer: FlowRun
    silver: FlowRun
    gold: FlowRun
    bronze_snapshot: int
    silver_snapshot: int
    gold_snapshot: int
    silver_lag_s: float
    gold_lag_s: float


def follow_window(catalog: Catalog, window: Window, producer: FlowRun, deployment: str = DEPLOYMENT) -> WindowTrace:
    """Wait for the Silver and Gold runs that the window's ready events start; measure the lags."""
    bronze = _committed_by(catalog, BRONZE_FLIGHTS, producer)
    silver_run = wait_for_run(f"build-silver-flights/{deployment}", consumer_of(bronze.snapshot_id, window, producer))
    silver = _committed_by(catalog, SILVER_FLIGHTS, silver_run)
    gold_matches = consumer_of(silver.snapshot_id, window, silver_run)
    gold_run = wait_for_run(f"build-gold-daily-delays/{deployment}", gold_matches)
    gold = _committed_by(catalog, GOLD_DAILY_DELAYS, gold_run)
    return WindowTrace(
        window,
        producer,
        silver_run,
        gold_run,
        bronze.snapshot_id,
        silver.snapshot_id,
        gold.snapshot_id,
        (silver.timestamp_ms - bronze.timestamp_ms) / 1000,
        (gold.timestamp_ms - bronze.timestamp_ms) / 1000,
    )


def _committed_by(catalog: Catalog, ref: TableRef, run: FlowRun) -> Snapshot:
    if not (run.state and run.state.is_completed()):
        state = run.state
        raise RuntimeError(f"{run.name} ended {state and state.name}: {state and state.message}")
    table = lake.load(catalog, ref)
    snapshot = lake.snapshot_of_run(table, str(run.id))
    if snapshot is None:
        # A re-delivered batch commits nothing: the window's rows are in the current snapshot.
        marker = lake.read_marker(table, run.parameters["params"]["window"])
        snapshot = table.snapshot_by_id(marker.snapshot_id) if marker else None
    if snapshot is None:
        raise RuntimeError(f"{run.name} completed but {ref} shows no commit or readiness marker of it")
    return snapshot
