"""Maintenance: compact small files, expire old snapshots, delete orphan files; scheduled daily."""

from datetime import timedelta

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field
from pyiceberg.catalog import Catalog

from flows.alerts import alert_on_failure
from flows.common import io_task, open_lakehouse, platform, run_info
from lakeops.datasets.names import MAINTAIN_FLOW
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance
from lakeops.versioning import maintenance


class MaintainParams(BaseModel):
    keep_last: int = Field(default=50, ge=1, le=10_000, description="Newest snapshots always kept.")
    max_age_hours: float = Field(default=168, ge=0, description="Snapshots younger than this are kept.")
    orphan_grace_minutes: float = Field(default=60, ge=0, description="Files younger than this are never deleted.")
    compact_min_files: int = Field(default=8, ge=2, description="Compact a partition holding this many files.")
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")


@io_task
def maintain(catalog: Catalog, params: MaintainParams) -> list[maintenance.MaintenanceReport]:
    policy = maintenance.RetentionPolicy(
        keep_last=params.keep_last,
        max_age=timedelta(hours=params.max_age_hours),
        orphan_grace=timedelta(minutes=params.orphan_grace_minutes),
        compact_min_files=params.compact_min_files,
    )
    run = run_info()
    made_by = Provenance(run.code_version, run.flow_run_id, "", "", operation="maintenance")
    registry = platform()
    return maintenance.maintain(
        catalog, registry, tuple(lake.table_specs(registry)), policy, made_by, maintenance.utcnow()
    )


@flow(name=MAINTAIN_FLOW, on_failure=[alert_on_failure()])
def maintain_tables(params: MaintainParams) -> list[maintenance.MaintenanceReport]:
    """Keep commit cost flat: tagged snapshots and what replay needs are never expired."""
    _, catalog = open_lakehouse(params.lakehouse)
    reports = maintain(catalog, params)
    for report in reports:
        get_run_logger().info("%s", report)
    create_table_artifact([vars(r) for r in reports], key="table-maintenance", description="last maintenance run")
    return reports
