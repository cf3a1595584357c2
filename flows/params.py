"""Parameter models shared by the build flows (rendered as forms in the Prefect UI)."""

from datetime import date

from pydantic import BaseModel, Field


class BuildParams(BaseModel):
    layer: str = Field(
        description="The layer to build, <dataset>.<layer>, e.g. flights.silver (its deployment sets it)."
    )
    window: str = Field(description="The window to build (2013-01-02, or 2013-01-02T05 for an hour), from the event.")
    snapshot_id: int | None = Field(
        default=None, description="A one-input layer: the input snapshot to read, from its ready event."
    )
    inputs: dict[str, int] | None = Field(
        default=None, description="A layer of several inputs: <dataset>.<layer> -> snapshot, from inputs-ready."
    )
    stale: bool = Field(default=False, description="True when an input is a stale fallback.")
    fallback_window: date | None = Field(
        default=None, description="Stale fallback only: the earlier window whose data is carried forward."
    )
    transform_version: str | None = Field(
        default=None, description="Transform version of the layer's dataset; default: the live release's."
    )
    lakehouse: str = Field(default="default", description="IcebergLakehouse block document name.")
