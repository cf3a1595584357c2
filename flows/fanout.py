"""Fan-out: the task runner that runs a flow's windows side by side, and what a window's task opens.

A flow that fans windows out (backfill, replay, release) runs on `FanOut`, Prefect's DaskTaskRunner:
a local cluster of LAKEOPS_DASK_WORKERS single-threaded worker processes (2 by default) started with
the run, or the cluster at LAKEOPS_DASK_ADDRESS (`tcp://scheduler:8786`) in production. Only what a
flow submits goes to the cluster: one task per window (a backfill's: per run of windows), which opens
the catalog from the lakehouse block by name (a catalog does not travel between processes). A worker
holds one window at a time, so a run's memory is its workers' windows, not the dataset.

Under a memory limit (the run's `memory` job variable, LAKEOPS_MEMORY_MB) a backfill fits its cluster
before starting it (`run_fitted`): its first (largest) window runs in the flow's own process, sampled,
and that peak (the imports a worker starts from, and one window) is what every worker will need. As many
workers as the limit holds beside the flow's process, up to LAKEOPS_DASK_WORKERS, take the rest; when
that is one, no cluster starts and the flow's process runs them. So SF1's months run two at a time in
2 GB and SF10's one at a time, with no second interpreter. A replay or a release starts its cluster
with one worker and grows it once the first window is done (`fit_to_memory`).

A task costs the orchestrator about 0.1 s (its task run's states, the hand-off to a worker), so a backfill
submits runs of consecutive windows, about eight tasks per planned worker (`lakeops.build.backfill.in_tasks`);
a worker opens the lakehouse once per flow run.
"""

import math
import os
import resource
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psutil
from prefect import Task, get_run_logger
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import State
from prefect_dask import DaskTaskRunner
from pyiceberg.catalog import Catalog

from blocks.lakehouse import IcebergLakehouse
from lakeops.build import backfill
from lakeops.healing.memlimit import limit_mb

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

    most_workers: int = 1  # what a local cluster started with one worker may grow to (fit_to_memory)
    in_process: bool = False  # the run's windows run in the flow's own process: one window is all it holds

    def duplicate(self) -> "FanOut":
        return task_runner()

    def grow(self, limit: int) -> int:
        """Add workers to the local cluster as `limit` MB hold at its one worker's measured peak; the count.

        It grows from one worker only: a run that submits several plans (a release's two colours) sizes its
        cluster on the first."""
        client, cluster = self._client, self._cluster
        if client is None or cluster is None:
            return 0
        current = len(client.scheduler_info()["workers"])
        if current != 1 or self.most_workers <= 1:
            return current
        measured = client.run(worker_memory)
        peak, now = max(measured.values())
        # The flow's process holds the scheduler and the workers' nannies; the workers are its children.
        run_now = sum(p.memory_info().rss for p in [psutil.Process(), *psutil.Process().children(recursive=True)])
        workers = workers_that_fit(limit, run_now / 2**20 - now + peak, peak, self.most_workers)
        if workers > 1:
            cluster.scale(workers)
        message = "a worker peaked at %.0f MB on its first window: %s of at most %s workers fit in %s MB"
        logger = get_run_logger() if FlowRunContext.get() else self.logger  # the run's log, where there is a run
        logger.info(message, peak, workers, self.most_workers, limit)
        return workers


def task_runner() -> FanOut:
    """The cluster at LAKEOPS_DASK_ADDRESS, else a local one of LAKEOPS_DASK_WORKERS single-threaded processes
    (one to begin with under a memory limit: `fit_to_memory` adds the rest)."""
    if address := os.environ.get(ADDRESS_ENV):
        return FanOut(address=address)
    workers = int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS)
    fitted = limit_mb(os.environ) is not None and workers > 1
    # One thread per worker: a worker holds one window; the engines (DuckDB, Arrow) use threads of their own.
    kwargs: dict[str, Any] = {"n_workers": 1 if fitted else workers, "threads_per_worker": 1, "dashboard_address": None}
    runner = FanOut(cluster_kwargs=kwargs)
    runner.most_workers = workers if fitted else 1
    return runner


def workers_that_fit(limit_mb: float, run_at_peak_mb: float, worker_mb: float, most: int) -> int:
    """How many workers a run of `limit_mb` holds: one already there (the run, with it at its peak, holds
    `run_at_peak_mb`), and each more needs `worker_mb`; a tenth of the limit is left for what varies."""
    room = 0.9 * limit_mb - run_at_peak_mb
    return max(1, min(most, 1 + math.floor(room / worker_mb)))


def worker_memory() -> tuple[float, float]:
    """In a Dask worker: its peak and its current resident set, MB."""
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak_kb / 1024, psutil.Process().memory_info().rss / 2**20


def fit_to_memory(futures: Sequence[PrefectFuture[Any]]) -> int | None:
    """Once the first of `futures` is done, grow the flow's local cluster to what the run's memory holds
    (see the module doc); the workers it runs on, or None when there is no local cluster to fit."""
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    limit = limit_mb(os.environ)
    if not futures or limit is None or not isinstance(runner, FanOut) or runner.address:
        return None
    futures[0].wait()
    return runner.grow(limit)


def run_fitted(
    task: Task[..., R], calls: list[tuple[Any, ...]]
) -> tuple[list[PrefectFuture[R] | State[R]], int | None]:
    """Each call of `task`, fitted to the run's memory before any worker starts; the workers it ran on (0: the
    flow's own process), or None when there was nothing to fit (no limit, a cluster at an address).

    The first call runs in the flow's own process, its resident set sampled: a worker, which starts from the
    same imports, will need what the process peaked at. As many workers as the limit holds beside the flow's
    process, up to LAKEOPS_DASK_WORKERS, take the other calls; when that is one, the flow's process runs them
    itself, one after the other (a single worker would only add its interpreter to the run's memory).
    """
    runner = _fitted_runner()
    limit = limit_mb(os.environ)
    if runner is None or limit is None or not calls:
        return [task.submit(*args) for args in calls], None
    with _Sampled() as process:
        first = task(*calls[0], return_state=True)
    backfill.release_memory()
    # With n workers the run holds the flow's process as it is now (no cluster yet), and n workers at that peak.
    workers = workers_that_fit(limit, _rss_mb() + process.peak_mb, process.peak_mb, runner.most_workers)
    message = (
        "the flow's process peaked at %.0f MB on the first window (from %.0f MB): %s of at most %s workers fit in %s MB"
    )
    get_run_logger().info(message, process.peak_mb, process.before_mb, workers, runner.most_workers, limit)
    if workers <= 1:
        runner.in_process = True
        return [first, *_in_process(task, calls[1:])], 0
    runner.cluster_kwargs["n_workers"] = workers  # the cluster starts at the first submit
    return [first, *(task.submit(*args) for args in calls[1:])], workers


def _fitted_runner() -> "FanOut | None":
    """The run's task runner when it is a local cluster sized to the run's memory (started with no task yet)."""
    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    if not isinstance(runner, FanOut) or runner.address or runner.most_workers <= 1 or runner._client is not None:
        return None
    return runner


class _Sampled:
    """The process's resident set before, and its peak while the block runs (sampled every 20 ms), MB."""

    def __init__(self) -> None:
        self.before_mb = self.peak_mb = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, _rss_mb())

    def __enter__(self) -> "_Sampled":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, _rss_mb())


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def lakehouse(name: str) -> tuple[IcebergLakehouse, Catalog]:
    """The lakehouse block and its catalog, in the worker that runs a window's task: loaded once per flow run
    in each worker process (about 40 ms each: an API call and a catalog opened), not once per window."""
    key = (name, str(flow_run.get_id()))
    with _opened_lock:
        if key not in _opened:
            block = IcebergLakehouse.load(name)
            _opened.clear()  # a worker of a long-lived cluster serves one run after another: keep the last only
            _opened[key] = block, block.catalog()
        return _opened[key]


_opened: dict[tuple[str, str], tuple[IcebergLakehouse, Catalog]] = {}
_opened_lock = threading.Lock()


def planned() -> int:
    """The workers a run plans its tasks for: LAKEOPS_DASK_WORKERS (2 by default), also at a cluster address."""
    return int(os.environ.get(WORKERS_ENV) or DEFAULT_WORKERS)


def fans_out(windows: int) -> bool:
    """Whether `windows` windows go to the cluster: always to a running one, to a local one when there
    are at least LAKEOPS_FANOUT_MIN_WINDOWS of them; never in a run fitted to its flow's own process."""
    context = FlowRunContext.get()
    if context is not None and isinstance(context.task_runner, FanOut) and context.task_runner.in_process:
        return False  # fitted to the run's memory: the flow's process runs the windows (`run_fitted`)
    if os.environ.get(ADDRESS_ENV):
        return True
    return windows >= int(os.environ.get(MIN_WINDOWS_ENV) or DEFAULT_MIN_WINDOWS)


def run_each(task: Task[..., R], calls: list[tuple[Any, ...]]) -> Iterator[PrefectFuture[R] | State[R]]:
    """Each call of `task`, in order, as something whose `.result()` returns its value or raises its failure.

    Submitted all at once to the flow's task runner when `fans_out`; else run one after the other in the
    flow's own process as the caller takes them (each still a task run, with its retries).
    """
    if fans_out(len(calls)):
        futures = [task.submit(*args) for args in calls]
        fit_to_memory(futures)
        return iter(futures)
    return _in_process(task, calls)


def _in_process(task: Task[..., R], calls: Iterable[tuple[Any, ...]]) -> Iterator[State[R]]:
    for args in calls:
        yield task(*args, return_state=True)
