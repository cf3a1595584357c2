"""The backfill deployment on a real server: TPC-H months landing -> Gold with the windows fanned out on a
local Dask cluster of two workers, Q1 from Gold exact, and a second backfill landing nothing new."""

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from pyiceberg.expressions import AlwaysTrue

from declarations.tpch import generate, q1
from lakeops.datasets.names import backfill_deployment
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake

pytestmark = pytest.mark.e2e
MONTHS = ("1993-01", "1993-02", "1993-03", "1993-04")
BACKFILL = backfill_deployment("tpch")  # backfill/backfill-tpch


@pytest.fixture(scope="module")
def landed(e2e, tmp_path_factory: pytest.TempPathFactory) -> Path:
    generated = generate.generate(0.01, tmp_path_factory.mktemp("tpchgen"))
    for month in MONTHS:
        generate.land_month(generated, e2e.landing, month)
    return e2e.landing / "lineitem"


def backfill(e2e):  # noqa: ANN001, ANN201
    params = {"dataset": "tpch", "start": MONTHS[0], "end": MONTHS[-1]}
    return run_deployment(BACKFILL, parameters={"params": params}, timeout=600, poll_interval=0.5)


def test_a_backfill_fans_the_windows_out_and_gold_answers_q1_exactly(e2e, landed) -> None:
    run = backfill(e2e)

    assert run.state.is_completed(), run.state.message
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    chains = sorted(t.name for t in tasks if t.name.startswith("backfill tpch"))
    assert chains == [f"backfill tpch {m}" for m in MONTHS]
    assert all(t.state.is_completed() for t in tasks if t.name in chains)
    # Under the deployment's 2 GB the cluster began with one worker and, its first window measured, took a second.
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    assert [a.description for a in found if a.key == "backfill-tpch"] == [
        f"backfill of tpch (v1): {len(MONTHS)} windows built, 0 failed, on 2 Dask workers"
    ]
    gold = lake.read_arrow(lake.load(e2e.catalog, e2e.registry.layer("tpch.gold").table), AlwaysTrue())
    cutoff = Window.parse(MONTHS[-1], "month").end.date()
    assert q1.same_q1(q1.q1_from_gold(gold, cutoff), q1.duckdb_q1(landed, cutoff)) == []


def test_a_second_backfill_lands_nothing_new(e2e, landed) -> None:
    bronze = lake.load(e2e.catalog, e2e.registry.layer("tpch.bronze").table)
    before = bronze.current_snapshot()
    assert before is not None  # the backfill above landed the months

    run = backfill(e2e)

    assert run.state.is_completed(), run.state.message
    bronze.refresh()
    assert bronze.current_snapshot().snapshot_id == before.snapshot_id
