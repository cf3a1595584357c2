"""The runs `scale.py` times through the deployments on its local server: a backfill and a release of
`tpch`, with what the memory supervisor recorded of each (its cgroup's peak and peak working set)."""

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from pyiceberg.expressions import AlwaysTrue

from admin.stack import LocalStack
from declarations.tpch import q1
from lakeops.datasets.names import backfill_deployment, release_deployment
from lakeops.datasets.windows import Window
from lakeops.healing import usage
from lakeops.iceberg import lake

CUTOFF = Window.parse("1998-09", "month").start.date()  # Q1's standard cutoff is 1998-09-02; any date is exact
BACKFILL_TIMEOUT = 3600


class Memory(NamedTuple):
    """A run's memory as its supervisor recorded it: the cgroup's peak (page cache included) and the peak
    working set (without the page cache the kernel drops first: what the run needed)."""

    peak_mb: float
    working_set_mb: float

    def __str__(self) -> str:
        return f"peak {self.peak_mb:.0f} MB (working set {self.working_set_mb:.0f} MB)"


UNKNOWN = Memory(float("nan"), float("nan"))


@dataclass(frozen=True)
class Backfill:
    seconds: float
    memory: Memory
    failed: str | None = None  # why the run did not complete (windows whose workers were killed out of memory)
    windows_s: float = float("nan")  # the windows' own time inside their tasks, summed over workers
    ran_on: int | None = None  # the workers its memory limit held (flows.fanout.run_fitted); 0: the flow's process


@dataclass(frozen=True)
class Release:
    """The blue-green release of tpch v2 (v1 in pyarrow and Acero instead of DuckDB) over every window."""

    seconds: float
    build_s: float  # pinned -> both colours built (each colour's windows fanned out)
    compare_s: float  # fingerprints window by window, keyed diff and suite where a window differs
    promote_s: float  # both tables' main moved to green
    verdict: str
    memory: Memory
    q1_exact: bool  # Q1 from the promoted Gold still equals DuckDB's
    failed: str | None = None


def backfill(stack: LocalStack, workers: int, end: str) -> Backfill:
    """Run the backfill deployment on `workers` Dask workers up to `end`: wall seconds and the run's peak memory."""
    started = time.monotonic()
    run = run_deployment(
        backfill_deployment("tpch"),
        parameters={"params": {"dataset": "tpch", "end": end}},
        job_variables={"env": {"LAKEOPS_DASK_WORKERS": str(workers)}},
        timeout=BACKFILL_TIMEOUT,
        poll_interval=1.0,
    )
    elapsed = time.monotonic() - started
    failed = None
    if not (run.state and run.state.is_completed()):
        failed = f"{run.state and run.state.name}: {(run.state and run.state.message or '')[:300]}"
    return Backfill(elapsed, peak_of(stack, str(run.id)), failed, *windows_seconds(str(run.id)))


def release(stack: LocalStack, catalog, dataset, landing: Path) -> Release:  # noqa: ANN001
    """Release tpch v2 against the live v1 through the release deployment: the run's steps and its peak."""
    started = time.monotonic()
    run = run_deployment(
        release_deployment("tpch"),
        parameters={"params": {"dataset": "tpch", "green_version": "v2"}},
        timeout=BACKFILL_TIMEOUT,
        poll_interval=1.0,
    )
    elapsed = time.monotonic() - started
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))

    def took(prefix: str) -> float:
        found = [t for t in tasks if t.name.startswith(prefix) and t.start_time and t.end_time]
        return sum((t.end_time - t.start_time).total_seconds() for t in found) if found else float("nan")

    pinned = [t.end_time for t in tasks if t.name.startswith("pin-") and t.end_time]
    compared = [t.start_time for t in tasks if t.name.startswith("compare-") and t.start_time]
    build_s = (min(compared) - max(pinned)).total_seconds() if pinned and compared else float("nan")
    failed = None if run.state and run.state.is_completed() else f"{run.state and run.state.name}"
    gold = lake.read_arrow(lake.load(catalog, dataset.layer("gold").table), AlwaysTrue())
    exact = not q1.same_q1(q1.q1_from_gold(gold, CUTOFF), q1.duckdb_q1(landing / "lineitem", CUTOFF))
    verdict = (run.state.message or "") if run.state else ""
    return Release(
        elapsed, build_s, took("compare-"), took("promote-"), verdict, peak_of(stack, str(run.id)), exact, failed
    )


def windows_seconds(flow_run_id: str) -> tuple[float, int | None]:
    """The time the run's windows took inside their tasks, summed, and the workers they ran on (from the
    run's table artifact)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    tables = [a for a in found if a.type == "table" and a.key == "backfill-tpch"]
    if not tables:
        return float("nan"), None
    rows = tables[0].data if isinstance(tables[0].data, list) else json.loads(str(tables[0].data))
    description = tables[0].description or ""
    workers = re.search(r"on (\d+) Dask workers", description)
    ran_on = int(workers.group(1)) if workers else 0 if "in the flow's own process" in description else None
    return sum(r["seconds"] or 0.0 for r in rows), ran_on


def peak_of(stack: LocalStack, flow_run_id: str) -> Memory:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = usage.read_all(stack.home / "usage").get(flow_run_id)
        if found is not None:
            working_set = found.peak_working_set_mb
            return Memory(found.peak_memory_mb, float("nan") if working_set is None else working_set)
        time.sleep(0.5)
    return UNKNOWN
