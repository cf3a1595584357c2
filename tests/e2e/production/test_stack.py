"""The pipeline on the Prefect server as teams run it (admin/production_stack.py), the lake on PostgreSQL and S3.

The stack of this folder's conftest: a fresh PostgreSQL database for Prefect and one for the Iceberg catalog, a
Redis db, two API servers (`--no-services`) behind the balancer, the services in their own process, basic auth
on, the warehouse on S3 (moto), a process worker. The producer's flow run talks to API server 0 only; its
ready event starts Silver through the deployment trigger (evaluated in the services process); server 0 is
killed with SIGKILL while Silver runs, and Silver and Gold finish through server 1. With server 0 still dead,
an SLA deadline's proactive automation fires and an out-of-memory kill is healed.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import psycopg2  # type: ignore[import-untyped]
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from admin import runs
from declarations.flights import landing
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.readiness import markers, sla
from lakeops.settings import LakeSettings
from tests.e2e.conftest import (
    BRONZE_FLIGHTS,
    BUFFER_SECONDS,
    GOLD_DAILY_DELAYS,
    SILVER_FLIGHTS,
    window_filter,
)
from tests.e2e.production.conftest import Production
from tests.e2e.test_dead_infra import queue_paused, wait
from tests.e2e.test_healer import FITS_IN_400_NOT_200, drill, fresh_drill_deployment, healer_of, reruns_of  # noqa: F401
from tests.e2e.test_sla import DATASET, missed_run, open_window, opened_at, silver_runs, state_of

pytestmark = pytest.mark.e2e
KILLED = 0  # the API server the producer talks to, killed mid-run


@pytest.fixture
def one_server_down(prod: Production) -> Production:
    """API server KILLED is dead (the first test kills it mid-run; run alone, a test kills it first)."""
    if KILLED in prod.stack.servers:
        prod.stack.kill_api_server(KILLED)
    return prod


@contextmanager
def catalog_locked(settings: LakeSettings) -> Iterator[None]:
    """An exclusive lock on the PostgreSQL catalog's table list: a run that opens the catalog waits until it ends."""
    connection = psycopg2.connect(settings.resolved_catalog_uri().replace("postgresql+psycopg2", "postgresql"))
    try:
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE iceberg_tables IN ACCESS EXCLUSIVE MODE")  # held until the rollback
        yield
    finally:
        connection.rollback()
        connection.close()


def read(run: FlowRun) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run.id)


def test_a_ready_event_posted_to_one_server_starts_consumers_which_finish_after_it_is_killed(prod) -> None:
    day = date(2013, 5, 1)
    landing.drop_day_file(prod.landing, day)
    params = {"params": {"dataset": "flights", "window": day.isoformat()}}
    to_one_server = {"env": {"PREFECT_API_URL": prod.stack.server_url(KILLED)}}  # not the balancer
    with queue_paused("default") as resume:  # Silver, created by the ready event, waits until the catalog is locked
        producer = run_deployment(
            runs.producer(prod.flights),
            parameters=params,
            job_variables=to_one_server,
            work_queue_name="production-stack",
            timeout=300,
            poll_interval=0.5,
        )
        assert producer.state.is_completed(), producer.state.message
        assert producer.job_variables["env"]["PREFECT_API_URL"] == prod.stack.server_url(KILLED)
        silver = wait("the Silver run of the ready event", lambda: next(iter(silver_runs(day)), None), 60)
        with catalog_locked(prod.settings):  # Silver starts, then waits on the catalog: killed mid-run
            resume()
            wait("Silver running", lambda: read(silver).state.is_running(), 120)
            prod.stack.kill_api_server(KILLED)  # SIGKILL
            killed = time.time()
            time.sleep(1)
            assert read(silver).state.is_running()

    trace = prod.follow(day, producer)
    silver_run, gold_run = trace.runs[1:]
    assert silver_run.id == silver.id
    for run in (silver_run, gold_run):
        assert run.created_by is not None and run.created_by.type == "AUTOMATION"
        assert run.state.is_completed(), run.state.message
    bronze_snapshot, silver_snapshot, gold_snapshot = (s.snapshot_id for s in trace.snapshots)
    assert silver_run.parameters["params"]["snapshot_id"] == bronze_snapshot
    assert gold_run.parameters["params"]["snapshot_id"] == silver_snapshot
    made = lake.provenance_of(lake.load(prod.catalog, SILVER_FLIGHTS).snapshot_by_id(silver_snapshot))
    assert made.inputs == {BRONZE_FLIGHTS.identifier: bronze_snapshot} and made.flow_run_id == str(silver_run.id)
    marker = markers.read_marker(lake.load(prod.catalog, GOLD_DAILY_DELAYS), day.isoformat())
    assert marker is not None and marker.snapshot_id == gold_snapshot
    gold = lake.read(lake.load(prod.catalog, GOLD_DAILY_DELAYS), window_filter(GOLD_DAILY_DELAYS, Window(day)))
    assert sorted(gold["origin"]) == ["EWR", "JFK", "LGA"]
    assert prod.stack.servers.keys() == {1 - KILLED} and prod.receiver.about(day.isoformat()) == []
    killed_backend = f"backend 127.0.0.1:{prod.stack.api_ports[KILLED]} is "
    said = [line for line in (prod.stack.home / "balancer.log").read_text().splitlines() if killed_backend in line]
    assert said[-1].endswith("is down")  # the balancer's health check saw it die, and routed around it
    print(
        f"\n{trace.describe()}; server {KILLED} killed while Silver ran; -> Silver completed "
        f"{silver_run.state.timestamp.timestamp() - killed:.1f} s, -> Gold completed "
        f"{gold_run.state.timestamp.timestamp() - killed:.1f} s after the kill"
    )


def test_a_window_with_no_signal_by_its_deadline_fires_the_proactive_sla_automation(one_server_down) -> None:
    prod = one_server_down
    day = date(2013, 6, 30)  # nothing ingested in the two days before it: no fallback
    open_window(prod, day)

    alert = prod.receiver.wait_for(f"{DATASET} {day.isoformat()} missed", timeout=BUFFER_SECONDS + 40)

    assert "No fallback" in alert.body and "not run" in alert.body
    handler = missed_run(day)
    assert handler.state.name == "Missed" and handler.created_by.type == "AUTOMATION"
    assert silver_runs(day) == []
    assert state_of(prod, day) == sla.State.MISSED
    print(f"\nwindow opened -> alert {alert.at - opened_at(prod, day).timestamp():.1f} s (buffer {BUFFER_SECONDS} s)")


def test_an_out_of_memory_kill_is_healed_with_one_api_server_down(one_server_down, fresh_drill_deployment) -> None:  # noqa: F811
    run = drill(FITS_IN_400_NOT_200, memory=200)

    assert run.state.is_crashed() and "status code: 137" in run.state.message, run.state
    healer = healer_of(run)
    assert healer.state.name == "Healed", healer.state.message
    assert healer.created_by.type == "AUTOMATION"
    (rerun,) = reruns_of(run)
    rerun = read(rerun)
    assert rerun.state.is_completed(), rerun.state.message
    assert rerun.job_variables["memory"] == 400
    print(f"\ncrash -> re-run completed {rerun.state.timestamp.timestamp() - run.state.timestamp.timestamp():.1f} s")
