"""Fan-out: the task runner that runs a flow's windows side by side, and what a window's task opens.

A flow that fans windows out (backfill, replay, release) runs on `FanOut`, Prefect's DaskTaskRunner:
a local cluster of LAKEOPS_DASK_WORKERS single-threaded worker processes (2 by default) started with
the run, or the cluster at LAKEOPS_DASK_ADDRESS (`tcp://scheduler:8786`) in production. Only what a
flow submits goes to the cluster: one task per window, which opens the catalog from the lakehouse
block by name (a catalog does not travel between processes). A worker holds one window at a time, so
a run's memory is its workers' windows, not the dataset.
"""

import os
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from prefect import Task
from prefect.futures import PrefectFuture
from prefect.states import State
from prefect_dask import DaskTaskRunner
from pyiceberg.catalog import Catalog

from blocks.lakehouse import IcebergLakehouse

ADDRESS_ENV, WORKERS_ENV = "LAKEOPS_DASK_ADDRESS", "LAKEOPS_DASK_WORKERS"
DEFAULT_WORKERS = 2
# Starting a local cluster costs seconds (worker processes, their imports): a plan of fewer windows than
# this runs in the flow's own process. A cluster at LAKEOPS_DASK_ADDRESS is already up: always used.
MIN_WINDOWS_ENV, DEFAULT_MIN_WINDOWS = "LAKEOPS_FANOUT_MIN_WINDOWS", 8
R = TypeVar("R")


class FanOut(DaskTaskRunner):
    """Prefect's DaskTaskRunner, its cluster read from the environment when a run starts (the engine
    duplicates a flow's task runner per run): a warm interpreter imported the flow module before the
    run's environment (its job variables) was set."""

    def duplicate(self) -> "FanOut":
        return task_runner()


def task_runner() -> FanOut:
    """The cluster at LAKEOPS_DASK_ADDRESS, else a local one of LAKEOPS_DASK_WORKERS single-threaded processes."""
    if address := os.environ.get(ADDRESS_ENV):
        return FanOut(address=address)
    workers = int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS)
    # One thread per worker: a worker holds one window; the engines (DuckDB, Arrow) use threads of their own.
    kwargs: dict[str, Any] = {"n_workers": workers, "threads_per_worker": 1, "dashboard_address": None}
    return FanOut(cluster_kwargs=kwargs)


def lakehouse(name: str) -> tuple[IcebergLakehouse, Catalog]:
    """The lakehouse block and its catalog, in the worker that runs a window's task."""
    block = IcebergLakehouse.load(name)
    return block, block.catalog()


def fans_out(windows: int) -> bool:
    """Whether `windows` windows go to the cluster: always to a running one, to a local one when there
    are at least LAKEOPS_FANOUT_MIN_WINDOWS of them."""
    if os.environ.get(ADDRESS_ENV):
        return True
    return windows >= int(os.environ.get(MIN_WINDOWS_ENV) or DEFAULT_MIN_WINDOWS)


def run_each(task: Task[..., R], calls: list[tuple[Any, ...]]) -> Iterator[PrefectFuture[R] | State[R]]:
    """Each call of `task`, in order, as something whose `.result()` returns its value or raises its failure.

    Submitted all at once to the flow's task runner when `fans_out`; else run one after the other in the
    flow's own process as the caller takes them (each still a task run, with its retries).
    """
    if fans_out(len(calls)):
        return iter([task.submit(*args) for args in calls])
    return _in_process(task, calls)


def _in_process(task: Task[..., R], calls: Iterable[tuple[Any, ...]]) -> Iterator[State[R]]:
    for args in calls:
        yield task(*args, return_state=True)
