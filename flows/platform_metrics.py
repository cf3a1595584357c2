"""Platform metrics: reliability, velocity and cost of the server's flow runs, kept in Iceberg, shown in the UI.

Daily (`platform-metrics/daily`). Reads the lakeops deployments' flow runs by EXPECTED start time (filtering
on start time drops the Crashed and Failed runs that never started: PrefectHQ/prefect#20341), their
deployments, work pools and the memory supervisor's usage records, and turns them into run facts; merges
them into `ops.run_facts` and rewrites `ops.metrics_daily` (whole days, idempotent); computes the report
from the history and the release log; publishes it as a markdown artifact (with the weekly chart) and a
table artifact; and on a burn-rate alert tells a human through the notification block and posts
`lakeops.metrics.burn-alert`.
"""

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, WorkPool
from prefect.client.schemas.responses import DeploymentResponse
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events import Event
from prefect.runtime import flow_run
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from blocks.cost_model import CostModel
from flows.alerts import DEFAULT_BLOCK, alert_on_failure, send
from flows.common import io_task, open_lakehouse, run_info
from flows.events import post_confirmed
from lakeops.datasets.names import BURN_ALERT_EVENT, METRICS_FLOW, PLATFORM_TAG
from lakeops.healing import usage
from lakeops.iceberg.provenance import Provenance
from lakeops.metrics import chart, history, report, runs, velocity
from lakeops.metrics.cost import Prices, Trend
from lakeops.metrics.facts import RunFact
from lakeops.metrics.reliability import BurnAlert
from lakeops.release import release_log
from lakeops.settings import LakeSettings

PAGE = 200  # the server's largest page of flow runs


class MetricsParams(BaseModel):
    days: int = Field(default=28, ge=1, le=366, description="Velocity and cost over the last N days.")
    backfill_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Read the flow runs expected to start in the last N days: every day the server still holds "
        "is rewritten in ops.run_facts; older history is kept as it is.",
    )
    dataset: str | None = Field(default=None, description="Report one dataset only (the history records all).")
    cost_model: str = Field(default="default", description="CostModel block document (missing: Fargate prices).")
    alert_block: str = Field(default=DEFAULT_BLOCK, description="Notification block that gets the burn alerts.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")
    usage_dir: str | None = Field(
        default=None,
        description="The memory supervisor's usage records; default $LAKEOPS_USAGE_DIR, else <home>/usage.",
    )
    as_of: datetime | None = Field(default=None, description="Compute as of this instant (default: the run's start).")


@dataclass(frozen=True)
class ServerFacts:
    """What the server holds: each finished run's fact, and the commit times its deployments record now."""

    facts: list[RunFact]
    deployed: dict[str, datetime]


def usage_folder(configured: str | None) -> Path:
    """Where the supervisor writes usage records: as configured, else LAKEOPS_USAGE_DIR, else <home>/usage."""
    chosen = configured or os.environ.get(usage.USAGE_DIR_ENV)
    return Path(chosen) if chosen else LakeSettings().resolved_home() / "usage"


def read_server(client: SyncPrefectClient, since: datetime, until: datetime, usage_dir: Path) -> ServerFacts:
    """The lakeops deployments' runs expected to start in [since, until], as facts (unfinished ones left out)."""
    found = _flow_runs(client, since, until)
    deployments = _deployments(client, {r.deployment_id for r in found if r.deployment_id})
    flows = _flow_names(client, {r.flow_id for r in found} | {d.flow_id for d in deployments.values()})
    pools = {pool.name: pool for pool in client.read_work_pools()}
    used = usage.read_all(usage_dir)
    facts = []
    for run in found:
        if run.deployment_id is None:  # a run outside a deployment is no pipeline's
            continue
        fact = runs.fact_of(_record(run, deployments.get(run.deployment_id), flows, pools), used.get(str(run.id)))
        if fact is not None:
            facts.append(fact)
    deployed = runs.committed_in(tag for d in deployments.values() for tag in d.tags)
    return ServerFacts(facts, deployed)


def _flow_runs(client: SyncPrefectClient, since: datetime, until: datetime) -> list[FlowRun]:
    window = FlowRunFilterExpectedStartTime(after_=since, before_=until)
    wanted = FlowRunFilter(expected_start_time=window, tags=FlowRunFilterTags(all_=[PLATFORM_TAG]))
    found: dict[UUID, FlowRun] = {}
    while True:
        page = client.read_flow_runs(
            flow_run_filter=wanted, sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=PAGE, offset=len(found)
        )
        found.update((r.id, r) for r in page)
        if len(page) < PAGE:
            return list(found.values())


def _deployments(client: SyncPrefectClient, ids: set[UUID]) -> dict[UUID, DeploymentResponse]:
    wanted = DeploymentFilter(id=DeploymentFilterId(any_=sorted(ids)))
    return {d.id: d for d in client.read_deployments(deployment_filter=wanted)} if ids else {}


def _flow_names(client: SyncPrefectClient, ids: set[UUID]) -> dict[UUID, str]:
    listed = client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=sorted(ids)))) if ids else []
    return {f.id: f.name for f in listed}


def _record(
    run: FlowRun, deployment: DeploymentResponse | None, flows: dict[UUID, str], pools: dict[str, WorkPool]
) -> runs.FlowRunRecord:
    pool = pools.get(run.work_pool_name or (deployment.work_pool_name if deployment else None) or "")
    name = deployment.name if deployment else str(run.deployment_id)
    return runs.FlowRunRecord(
        flow_run_id=str(run.id),
        deployment=f"{flows.get(run.flow_id, str(run.flow_id))}/{name}",
        state_type=run.state.type.value if run.state else "",
        state_name=run.state.name if run.state else "",
        expected_start=run.expected_start_time or run.created or datetime.now(UTC),
        started=run.start_time,
        ended=run.end_time,
        run_count=run.run_count,
        deployment_version=run.deployment_version,
        tags=tuple(run.tags),
        parameters=run.parameters,
        job_variables={
            **_pool_defaults(pool),
            **((deployment.job_variables or {}) if deployment else {}),
            **(run.job_variables or {}),
        },
        work_pool_type=pool.type if pool else "process",
    )


def _pool_defaults(pool: WorkPool | None) -> dict[str, Any]:
    """The defaults of a pool's job variables (its base job template's), e.g. the process pool's `memory`."""
    properties = (pool.base_job_template.get("variables", {}).get("properties", {})) if pool else {}
    return {k: v["default"] for k, v in properties.items() if isinstance(v, dict) and v.get("default") is not None}


def saved_prices(block_name: str) -> dict[str, Prices] | None:
    """The CostModel block's prices per work pool type, or None when no such document is saved."""
    try:
        return CostModel.load(block_name).prices()
    except ValueError:  # Block.load: no document of that name
        return None


def promotions_of(catalog: Catalog, facts: list[RunFact]) -> list[velocity.Promotion]:
    """The promoted releases of ops.releases, each with the code version of the run that released it."""
    versions = {f.flow_run_id: f.code_version for f in facts if f.code_version}
    return velocity.promotions(release_log.releases(catalog), versions)


@io_task
def read_runs(since: datetime, until: datetime, usage_dir: Path) -> ServerFacts:
    """The server's facts (a page of flow runs at a time)."""
    with get_client(sync_client=True) as client:
        return read_server(client, since, until, usage_dir)


@io_task
def merge_history(catalog: Catalog, server: ServerFacts) -> list[RunFact]:
    """The runs ops.run_facts kept, with the server's over them."""
    return history.merge(history.read_facts(catalog), server.facts)


@io_task
def read_promotions(catalog: Catalog, facts: list[RunFact]) -> list[velocity.Promotion]:
    """The promoted releases of ops.releases."""
    return promotions_of(catalog, facts)


@io_task
def load_prices(block_name: str) -> dict[str, Prices]:
    """The cost model's prices; Fargate's on demand when no CostModel document is saved."""
    saved = saved_prices(block_name)
    if saved is None:
        get_run_logger().warning("no CostModel block %r: runs are priced as Fargate on demand", block_name)
    return saved if saved is not None else CostModel().prices()


@io_task
def record_history(
    catalog: Catalog,
    server: ServerFacts,
    merged: list[RunFact],
    promotions: list[velocity.Promotion],
    prices: dict[str, Prices],
    now: datetime,
) -> history.Recorded:
    """Rewrite the days the server holds in ops.run_facts, and every day's figures in ops.metrics_daily."""
    run = run_info()
    made_by = Provenance(run.code_version, run.flow_run_id, "", "", operation="metrics")
    return history.record(catalog, server.facts, merged, promotions, prices, server.deployed, now, made_by)


def artifact_key(dataset: str | None) -> str:
    """Artifact keys take lowercase letters, digits and dashes."""
    return METRICS_FLOW + (f"-{dataset.lower().replace('_', '-').replace('.', '-')}" if dataset else "")


@io_task
def publish(computed: report.Report) -> UUID:
    """The markdown artifact (the chart inline, as a data: URI) and the table of every figure; the markdown's id."""
    image = chart.data_uri(chart.svg(computed))
    key = artifact_key(computed.dataset)
    described = f"{'; '.join(report.summary_lines(computed))}"
    create_table_artifact(computed.rows(), key=f"{key}-figures", description=described)
    return create_markdown_artifact(computed.to_markdown(image), key=key, description=described)


def _this_run() -> list[dict[str, str]]:
    run_id = flow_run.get_id()
    if not run_id:
        return []
    return [{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}]


@io_task
def tell_burn(alert: BurnAlert, computed: report.Report, block: str) -> None:
    """A burn alert, to a human (the notification block) and as an event automations can act on."""
    send(report.burn_message(alert, computed), block)
    resource = {"prefect.resource.id": f"lakeops.metrics.{alert.scope}", "prefect.resource.name": alert.scope}
    payload = report.burn_payload(alert, computed)
    post_confirmed(Event(event=BURN_ALERT_EVENT, resource=resource, related=_this_run(), payload=payload))


@io_task
def tell_cost(trend: Trend, computed: report.Report, block: str) -> None:
    """Cost per pipeline-hour rising two weeks running, to a human."""
    send(report.cost_message(trend, computed), block)


@flow(name=METRICS_FLOW, flow_run_name="platform metrics", on_failure=[alert_on_failure()])
def platform_metrics(params: MetricsParams) -> list[str]:
    """Facts from the server, history in the lake, the report as artifacts, burn alerts to a human."""
    now = (params.as_of or datetime.now(UTC)).astimezone(UTC)
    _, catalog = open_lakehouse(params.lakehouse)
    prices = load_prices(params.cost_model)
    server = read_runs(now - timedelta(days=params.backfill_days), now, usage_folder(params.usage_dir))
    merged = merge_history(catalog, server)
    promotions = read_promotions(catalog, merged)
    record_history(catalog, server, merged, promotions, prices, now)
    computed = report.compute(merged, promotions, server.deployed, prices, now, params.days, params.dataset)
    publish(computed)
    for alert in computed.burn_alerts:
        tell_burn(alert, computed, params.alert_block)
    for trend in computed.cost_alerts:
        tell_cost(trend, computed, params.alert_block)
    for line in report.summary_lines(computed):
        get_run_logger().info("%s", line)
    return report.summary_lines(computed)
