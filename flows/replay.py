"""Replay: re-run a dataset's transform version over a window range into a branch, from its recorded inputs."""

from datetime import date

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from flows.alerts import alert_on_failure
from flows.common import io_task, open_lakehouse, platform, run_info
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
def run(catalog: Catalog, planned: replay.ReplayPlan) -> replay.ReplayResult:
    """One task for the whole range: a retry resumes, skipping the windows already on the branch."""
    logger = get_run_logger()
    progress_id = create_progress_artifact(0.0, description=f"replay {planned.version} -> {planned.branch}")

    def report(progress: replay.Progress) -> None:
        logger.info("%s", progress)
        update_progress_artifact(progress_id, 100.0 * progress.done / progress.total)

    return replay.run(catalog, platform(), planned, run_info(), validate, on_progress=report)


@flow(name=REPLAY_FLOW, flow_run_name="{params.dataset} {params.transform_version}", on_failure=[alert_on_failure()])
def replay_dataset(params: ReplayParams) -> replay.ReplayResult:
    """Rebuild the dataset's windows with `transform_version` on a branch; consumers keep reading main."""
    _, catalog = open_lakehouse(params.lakehouse)
    planned = plan(catalog, params)
    result = run(catalog, planned)
    create_table_artifact(
        [{"window": str(w), "status": "replayed"} for w in result.replayed]
        + [{"window": str(w), "status": "already on branch"} for w in result.skipped],
        key=f"replay-{result.branch}".lower().replace("_", "-"),
        description=f"replay {result.version} into branch {result.branch}: "
        + ", ".join(f"{table}@{snapshot}" for table, snapshot in result.heads.items()),
    )
    return result
