"""The metrics flow's edge without a server: a Prefect flow run read into a fact, artifact keys, pool defaults."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from prefect.client.schemas.objects import FlowRun, State, StateType, WorkPool
from prefect.client.schemas.responses import DeploymentResponse

from flows import platform_metrics
from lakeops.metrics import runs
from lakeops.metrics.facts import Outcome

DUE = datetime(2026, 11, 29, 6, tzinfo=UTC)


def test_a_flow_run_its_deployment_and_pool_become_one_fact():
    flow_id, deployment_id = uuid4(), uuid4()
    pool = WorkPool(
        name="fargate",
        type="ecs",
        base_job_template={
            "variables": {"properties": {"cpu": {"type": "integer", "default": 1024}, "memory": {"default": None}}}
        },
    )
    deployment = DeploymentResponse(
        id=deployment_id,
        name="bronze.weather",
        flow_id=flow_id,
        work_pool_name="fargate",
        job_variables={"memory": 4096},
    )
    run = FlowRun(
        flow_id=flow_id,
        deployment_id=deployment_id,
        deployment_version="git:abc",
        state=State(type=StateType.FAILED, name="Failed"),
        expected_start_time=DUE,
        start_time=DUE + timedelta(seconds=5),
        end_time=DUE + timedelta(seconds=65),
        run_count=1,
        tags=["lakeops", "dataset:weather", runs.committed_tag("git:abc", "2026-11-28T10:00:00+00:00")],
        parameters={"params": {"dataset": "weather", "window": "2026-11-28"}},
        job_variables={"memory": 2048},
    )
    record = platform_metrics._record(run, deployment, {flow_id: "ingest"}, {"fargate": pool})
    fact = runs.fact_of(record)
    assert fact is not None
    assert (fact.deployment, fact.dataset, fact.unit, fact.outcome) == (
        "ingest/bronze.weather",
        "weather",
        "2026-11-28",
        Outcome.FAILED,
    )
    # The run's job variables over the deployment's over the pool's defaults; an ECS pool's cpu counts 1024 a vCPU.
    assert (fact.work_pool_type, fact.requested_cpu, fact.requested_memory_mb) == ("ecs", 1.0, 2048.0)
    assert fact.code_committed_at == datetime(2026, 11, 28, 10, tzinfo=UTC)


def test_artifact_keys_take_lowercase_letters_digits_and_dashes():
    assert platform_metrics.artifact_key(None) == "platform-metrics"
    assert platform_metrics.artifact_key("flight_weather") == "platform-metrics-flight-weather"
