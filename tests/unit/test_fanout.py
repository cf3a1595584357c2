"""flows.fanout: which plans start a local Dask cluster, and the runner each run gets from its environment."""

import pytest

from flows import fanout
from lakeops.healing.memlimit import MEMORY_ENV


def test_a_plan_of_few_windows_runs_in_the_flow_and_a_large_one_fans_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fanout.ADDRESS_ENV, raising=False)
    monkeypatch.delenv(fanout.MIN_WINDOWS_ENV, raising=False)
    assert not fanout.fans_out(fanout.DEFAULT_MIN_WINDOWS - 1)
    assert fanout.fans_out(fanout.DEFAULT_MIN_WINDOWS)

    monkeypatch.setenv(fanout.MIN_WINDOWS_ENV, "2")
    assert not fanout.fans_out(1)
    assert fanout.fans_out(2)


def test_a_running_cluster_takes_every_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fanout.ADDRESS_ENV, "tcp://scheduler:8786")
    monkeypatch.setenv(fanout.MIN_WINDOWS_ENV, "100")
    assert fanout.fans_out(1)
    runner = fanout.task_runner().duplicate()
    assert runner.address == "tcp://scheduler:8786"


def test_a_local_cluster_is_sized_from_the_run_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fanout.ADDRESS_ENV, raising=False)
    monkeypatch.setenv(fanout.WORKERS_ENV, "3")
    runner = fanout.task_runner().duplicate()
    assert runner.address is None
    assert runner.cluster_kwargs["n_workers"] == 3
    assert runner.cluster_kwargs["threads_per_worker"] == 1


def test_without_a_memory_limit_a_local_cluster_starts_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fanout.ADDRESS_ENV, raising=False)
    monkeypatch.delenv(MEMORY_ENV, raising=False)
    monkeypatch.setenv(fanout.WORKERS_ENV, "2")
    runner = fanout.task_runner().duplicate()
    assert (runner.cluster_kwargs["n_workers"], runner.most_workers) == (2, 1)


def test_under_a_memory_limit_a_local_cluster_starts_with_one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fanout.ADDRESS_ENV, raising=False)
    monkeypatch.setenv(MEMORY_ENV, "2048")
    monkeypatch.setenv(fanout.WORKERS_ENV, "3")
    runner = fanout.task_runner().duplicate()
    assert (runner.cluster_kwargs["n_workers"], runner.most_workers) == (1, 3)


@pytest.mark.parametrize(
    ("limit", "run_at_peak", "worker", "most", "fit"),
    [
        (2048, 1000, 600, 2, 2),  # SF1: room for a second worker
        (2048, 1000, 600, 4, 2),  # ... and not for a third
        (2048, 1800, 1400, 2, 1),  # SF10: the first worker's window fills the run
        (2048, 2500, 1400, 2, 1),  # over the limit already: never below one
        (16384, 1000, 600, 8, 8),  # capped at the most asked for
    ],
)
def test_workers_that_fit_leave_a_tenth_of_the_limit(limit, run_at_peak, worker, most, fit) -> None:  # noqa: ANN001
    assert fanout.workers_that_fit(limit, run_at_peak, worker, most) == fit


def test_outside_a_flow_run_there_is_no_cluster_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_ENV, "2048")
    assert fanout.fit_to_memory([]) is None


def _hold(megabytes: int) -> int:
    held = bytearray(megabytes * 2**20)  # touched: resident
    return len(held)


def test_a_local_cluster_grows_to_what_the_limit_holds_at_its_worker_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fanout.ADDRESS_ENV, raising=False)
    monkeypatch.setenv(MEMORY_ENV, "2048")
    monkeypatch.setenv(fanout.WORKERS_ENV, "2")
    with fanout.task_runner() as runner:
        client = runner.client  # started on first use, as by the first submitted task
        assert client is not None
        assert client.submit(_hold, 300).result() == 300 * 2**20
        peak, _ = next(iter(client.run(fanout.worker_memory).values()))
        assert peak > 300  # the worker's peak saw the window it ran

        assert runner.grow(int(peak)) == 1  # a limit its one worker fills: no second
        assert len(client.scheduler_info()["workers"]) == 1

        assert runner.grow(20_000) == 2
        client.wait_for_workers(2, timeout=60)
        assert len(client.scheduler_info()["workers"]) == 2

        assert runner.grow(int(peak)) == 2  # grown once: a later plan of the run keeps its workers
