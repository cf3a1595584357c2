"""Fan-out: the task runner that runs a flow's windows side by side, and what a window's task opens.

A flow that fans windows out (backfill, replay, release) runs on `FanOut`, Prefect's DaskTaskRunner:
a local cluster of LAKEOPS_DASK_WORKERS single-threaded worker processes (2 by default) started with
the run, or the cluster at LAKEOPS_DASK_ADDRESS (`tcp://scheduler:8786`) in production. Only what a
flow submits goes to the cluster: one task per window, which opens the catalog from the lakehouse
block by name (a catalog does not travel between processes). A worker holds one window at a time, so
a run's memory is its workers' windows, not the dataset.
"""

import os
from typing import Any

from prefect_dask import DaskTaskRunner
from pyiceberg.catalog import Catalog

from blocks.lakehouse import IcebergLakehouse

ADDRESS_ENV, WORKERS_ENV = "LAKEOPS_DASK_ADDRESS", "LAKEOPS_DASK_WORKERS"
DEFAULT_WORKERS = 2


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
