"""Replay: re-run a dataset's transform version over a window range into a branch, from its recorded inputs."""

import time
from datetime import date

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from flows import fanout
from flows.alerts import alert_on_failure
from flows.common import io_options, io_task, open_lakehouse, platform, run_info
from lakeops.build.validation import validate
from lakeops.datasets.names import REPLAY_FLOW
from lakeops.versioning import replay


class ReplayParams(BaseModel):
    dataset: str = Field(description="The dataset to replay, e.g. flights (set by its deployment).")
    transform_version: str = Field(description="Transform version of the dataset to replay, e.g. v2.")
    start: date | None = Field(default=None, description="First window; default: the last known good window.")
    end: date | None = Field(default=None, description="Last window; default: the newest window.")
    branch: str | None = Field(default=None, description="Output branch; default: replay-<transform_version>.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@io_task
def plan(catalog: Catalog, params: ReplayParams) -> replay.ReplayPlan:
    return replay.plan(
        catalog, platform(), params.dataset, params.transform_version, params.start, params.end, params.branch
    )


@io_task
def prepare(catalog: Catalog, planned: replay.ReplayPlan) -> None:
    replay.prepare(catalog, platform(), planned)


@task(task_run_name="{operation} {window}", **io_options())
def replay_window(
    lakehouse: str,
    planned: replay.ReplayPlan,
    index: int,
    window: str,
    operation: str = replay.OPERATION,
    audited: bool = True,
) -> replay.Replayed:
    """One window on a worker of the flow's cluster; a retry skips the layers already on the branch."""
    _, catalog = fanout.lakehouse(lakehouse)
    source = planned.sources[index]
    suite = validate if audited else None
    return replay.run_window(catalog, platform(), planned, source, run_info(), suite, operation)


def replay_windows(
    lakehouse: str,
    catalog: Catalog,
    planned: replay.ReplayPlan,
    operation: str = replay.OPERATION,
    audited: bool = True,
) -> replay.ReplayResult:
    """Every window of the plan side by side on the flow's task runner, progress reported as they finish.

    `audited`: each window's output passes its layer's suite before its commit (a replay's; a release's
    colours are compared, not audited, as before they were fanned out). A plan of few windows runs in the
    flow's own process (`fanout.fans_out`)."""
    logger = get_run_logger()
    progress_id = create_progress_artifact(0.0, description=f"{operation} {planned.version} -> {planned.branch}")
    prepare(catalog, planned)
    calls = [(lakehouse, planned, i, s.window.key, operation, audited) for i, s in enumerate(planned.sources)]
    outcomes, rows, started = [], 0, time.monotonic()
    for count, ran in enumerate(fanout.run_each(replay_window, calls), start=1):
        outcome = ran.result()
        outcomes.append(outcome)
        rows += outcome.rows
        progress = replay.Progress(
            outcome.window, count, len(calls), not outcome.built, rows, time.monotonic() - started
        )
        logger.info("%s", progress)
        update_progress_artifact(progress_id, 100.0 * count / len(calls))
    return replay.result(catalog, platform(), planned, outcomes)


@flow(
    name=REPLAY_FLOW,
    flow_run_name="{params.dataset} {params.transform_version}",
    task_runner=fanout.task_runner(),
    on_failure=[alert_on_failure()],
)
def replay_dataset(params: ReplayParams) -> replay.ReplayResult:
    """Rebuild the dataset's windows with `transform_version` on a branch; consumers keep reading main."""
    _, catalog = open_lakehouse(params.lakehouse)
    planned = plan(catalog, params)
    result = replay_windows(params.lakehouse, catalog, planned)
    create_table_artifact(
        [{"window": str(w), "status": "replayed"} for w in result.replayed]
        + [{"window": str(w), "status": "already on branch"} for w in result.skipped],
        key=f"replay-{result.branch}".lower().replace("_", "-"),
        description=f"replay {result.version} into branch {result.branch}: "
        + ", ".join(f"{table}@{snapshot}" for table, snapshot in result.heads.items()),
    )
    return result
