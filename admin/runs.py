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

from lakeops.datasets.declaration import Dataset
from lakeops.datasets.names import BUILD_FLOW, INGEST_FLOW, TableRef, deployment
from lakeops.datasets.registry import Registry, bronze_of
from lakeops.datasets.windows import Window
from lakeops.healing.oom import HEALS_TAG
from lakeops.iceberg import lake
from lakeops.readiness import markers


def producer(dataset: Dataset) -> str:
    """The deployment that ingests the dataset's source files."""
    return deployment(INGEST_FLOW, str(bronze_of(dataset).table))


def builder(table: TableRef) -> str:
    """The deployment that builds a layer, named after the table it writes."""
    return deployment(BUILD_FLOW, str(table))


def run_producer(dataset: Dataset, day: date, timeout: float = 300) -> FlowRun:
    """Run the dataset's producer deployment for one day and wait for it to finish."""
    params = {"params": {"dataset": dataset.name, "window": day.isoformat()}}
    return run_deployment(producer(dataset), parameters=params, timeout=timeout, poll_interval=0.5)


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


def healed(deployment: str, run: FlowRun, timeout: float = 120) -> FlowRun:
    """The run, or, when it crashed and the healer re-ran it, the re-run that ended the chain (once final)."""
    while run.state is not None and run.state.is_crashed():
        run = wait_for_run(deployment, lambda r, heals=HEALS_TAG + str(run.id): heals in r.tags, timeout)
    return run


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
    """One window's way through a dataset's chain of layers: each run and the snapshot it committed."""

    window: Window
    tables: tuple[TableRef, ...]  # Bronze first, then each built layer that reads the one before
    runs: tuple[FlowRun, ...]
    snapshots: tuple[Snapshot, ...]

    @property
    def producer(self) -> FlowRun:
        return self.runs[0]

    @property
    def last(self) -> FlowRun:
        return self.runs[-1]

    def lag_s(self, hop: int) -> float:
        """Seconds from the Bronze commit to the commit of the `hop`-th layer after it."""
        return (self.snapshots[hop].timestamp_ms - self.snapshots[0].timestamp_ms) / 1000

    def describe(self) -> str:
        hops = " ".join(f"-> {t.name} +{self.lag_s(i):.1f}s" for i, t in enumerate(self.tables) if i)
        return f"{self.tables[0]} {self.snapshots[0].snapshot_id} {hops}"


def chain(registry: Registry, dataset: Dataset) -> list[TableRef]:
    """Bronze, then each layer of the dataset that reads the previous one alone (what one window flows through)."""
    tables = [bronze_of(dataset).table]
    qualified = f"{dataset.name}.{bronze_of(dataset).name}"
    while True:
        nxt = [(d, x) for d, x in registry.consumers(qualified) if d.name == dataset.name and len(x.inputs) == 1]
        if not nxt:
            return tables
        qualified = f"{nxt[0][0].name}.{nxt[0][1].name}"
        tables.append(nxt[0][1].table)


def follow_window(
    catalog: Catalog, registry: Registry, dataset: Dataset, window: Window, producer_run: FlowRun, timeout: float = 120
) -> WindowTrace:
    """Wait for the runs the window's ready events start down the dataset's chain; measure the lags."""
    tables = chain(registry, dataset)
    runs, snapshots = [producer_run], [_committed_by(catalog, tables[0], producer_run)]
    for table in tables[1:]:
        run = wait_for_run(builder(table), consumer_of(snapshots[-1].snapshot_id, window, runs[-1]), timeout)
        run = healed(builder(table), run, timeout)
        runs.append(run)
        snapshots.append(_committed_by(catalog, table, run))
    return WindowTrace(window, tuple(tables), tuple(runs), tuple(snapshots))


def _committed_by(catalog: Catalog, ref: TableRef, run: FlowRun) -> Snapshot:
    if not (run.state and run.state.is_completed()):
        state = run.state
        raise RuntimeError(f"{run.name} ended {state and state.name}: {state and state.message}")
    table = lake.load(catalog, ref)
    snapshot = lake.snapshot_of_run(table, str(run.id))
    if snapshot is None:
        # A re-delivered batch commits nothing: the window's rows are in the current snapshot.
        marker = markers.read_marker(table, run.parameters["params"]["window"])
        snapshot = table.snapshot_by_id(marker.snapshot_id) if marker else None
    if snapshot is None:
        raise RuntimeError(f"{run.name} completed but {ref} shows no commit or readiness marker of it")
    return snapshot


def joined_runs(registry: Registry, layer: str, day: date) -> list[FlowRun]:
    """Every run of a multi-input layer's deployment for one window, newest first."""
    dep_id = deployment_id(builder(registry.layer(layer).table))
    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[dep_id])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC,
            limit=200,
        )
    return [run for run in found if run.parameters.get("params", {}).get("window") == day.isoformat()]


def wait_for_joined(registry: Registry, layer: str, day: date, after: FlowRun, timeout: float = 120) -> FlowRun:
    """The run of a multi-input layer for `day` created after `after`, once final."""

    def matches(run: FlowRun) -> bool:
        newer = run.created is not None and after.created is not None and run.created > after.created
        return newer and run.parameters.get("params", {}).get("window") == day.isoformat()

    return wait_for_run(builder(registry.layer(layer).table), matches, timeout)
