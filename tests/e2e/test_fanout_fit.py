"""flows.fanout.run_fitted on a real server: the first call runs in the flow's own process, sampled, and the
run's memory limit decides the rest: a local cluster of as many workers as it holds, or, when that is one,
the flow's process itself, with no cluster started."""

import math
import time

import psutil
import pytest
from prefect import flow, task
from prefect.context import FlowRunContext

from flows import fanout
from lakeops.healing.memlimit import MEMORY_ENV

pytestmark = pytest.mark.e2e


@task
def hold(megabytes: int) -> int:
    """Hold `megabytes` resident for a moment, as a window's data is held while it is built."""
    held = b"\x01" * (megabytes * 2**20)  # written: every page resident
    time.sleep(0.2)
    return len(held) // 2**20


@flow(task_runner=fanout.task_runner())
def fitted(megabytes: int, calls: int) -> tuple[list[int], int | None, bool]:
    results, workers = fanout.run_fitted(hold, [(megabytes,)] * calls)
    runner = FlowRunContext.get().task_runner
    started = runner._client is not None  # noqa: SLF001 - did a cluster start?
    return [r.result() for r in results], workers, started


@pytest.fixture
def limited(e2e, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A limit that holds this process and two workers of its size with 150 MB windows, not 1,200 MB ones.
    The flow runs in the test's own process, whose size depends on the tests before it (300-700 MB)."""
    monkeypatch.delenv(fanout.ADDRESS_ENV, raising=False)
    process = psutil.Process().memory_info().rss / 2**20
    monkeypatch.setenv(MEMORY_ENV, str(math.ceil((3 * process + 2 * 150 + 100) / 0.9)))
    monkeypatch.setenv(fanout.WORKERS_ENV, "2")


def test_small_windows_go_to_as_many_workers_as_the_limit_holds(limited) -> None:  # noqa: ANN001
    held, workers, started = fitted.with_options(task_runner=fanout.task_runner())(50, 4)

    assert held == [50] * 4
    assert workers == 2 and started


def test_when_one_window_fills_the_limit_the_flow_runs_them_and_starts_no_cluster(limited) -> None:  # noqa: ANN001
    held, workers, started = fitted.with_options(task_runner=fanout.task_runner())(1200, 3)

    assert held == [1200] * 3
    assert workers == 0 and not started
    assert fanout.fans_out(100)  # outside the run: its choice does not stay behind


def test_without_a_limit_every_call_is_submitted_to_the_cluster(e2e, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.delenv(fanout.ADDRESS_ENV, raising=False)
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    monkeypatch.setenv(fanout.WORKERS_ENV, "1")

    held, workers, started = fitted.with_options(task_runner=fanout.task_runner())(10, 2)

    assert held == [10, 10] and workers is None and started
