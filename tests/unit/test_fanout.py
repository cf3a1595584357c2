"""flows.fanout: which plans start a local Dask cluster, and the runner each run gets from its environment."""

import pytest

from flows import fanout


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
