"""Parameter models shared by the consumer flows (rendered as forms in the Prefect UI)."""

from datetime import date

from pydantic import BaseModel, Field

from lakeops.transforms import CURRENT, VERSIONS


class BuildParams(BaseModel):
    window: date = Field(description="The day to build, from the ready event's payload.")
    snapshot_id: int = Field(description="Input table snapshot to read, from the ready event.")
    stale: bool = Field(default=False, description="True when the input is a stale fallback.")
    fallback_window: date | None = Field(
        default=None, description="Stale fallback only: the earlier window whose data is carried forward."
    )
    transform_version: str | None = Field(
        default=None,
        description=f"Transform version, one of {sorted(VERSIONS)}; default: the live release's (else {CURRENT}).",
    )
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")
