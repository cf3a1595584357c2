"""Release rollback: consumers read the previous release again, one atomic commit per table."""

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from flows.alerts import alert_on_failure
from flows.common import io_task, open_lakehouse, platform
from lakeops.datasets.names import ROLLBACK_FLOW
from lakeops.release import promotion


class RollbackParams(BaseModel):
    dataset: str = Field(description="The dataset to roll back, e.g. flights (set by its deployment).")
    reason: str = Field(default="", description="Why; kept in the release log.")
    force: bool = Field(default=False, description="Discard commits made on main since the release was promoted.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@io_task
def roll_back(catalog: Catalog, params: RollbackParams) -> promotion.RolledBack:
    actor = f"prefect:{flow_run.get_name() or 'local'}"
    dataset = platform().dataset(params.dataset)
    done = promotion.rollback(catalog, dataset, actor, params.reason, params.force, str(flow_run.get_id()))
    get_run_logger().info(
        "release %s rolled back: main restored to %s; live now: %s",
        done.release_id,
        done.restored,
        done.live_now or "no release",
    )
    return done


@flow(name=ROLLBACK_FLOW, flow_run_name="{params.dataset}", on_failure=[alert_on_failure()])
def release_rollback(params: RollbackParams) -> promotion.RolledBack:
    """Move every table of the dataset back to what consumers read before its live release."""
    _, catalog = open_lakehouse(params.lakehouse)
    return roll_back(catalog, params)
