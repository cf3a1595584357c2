"""The ReadinessContract block: one dataset's readiness contract, as flow runs read it."""

from datetime import time, timedelta
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field

from lakeops.contracts import ReadinessContract


class ReadinessContractBlock(Block):
    """When a dataset's signal is due, the grace buffer, what a stale fallback may use, who to alert."""

    _block_type_slug: ClassVar[str] = "lakeops-readiness-contract"
    _block_type_name: ClassVar[str] = "lakeops Readiness Contract"
    _description: ClassVar[str] = "Readiness contract of one dataset (written by `lakeops setup` from contracts.yaml)."

    dataset: str = Field(description="Dataset the contract covers, e.g. bronze.flights.")
    producer: str = Field(description="Deployment that publishes the dataset's ready signal.")
    consumer: str = Field(description="Deployment that consumes it (and runs the stale fallback).")
    expected_at: time = Field(description="UTC time on the day after the window when the signal is due.")
    buffer_seconds: float = Field(ge=10, description="Grace after expected_at; the deadline is their sum.")
    max_fallback_age_days: float = Field(ge=0, description="Oldest data a stale fallback may carry forward.")
    give_up_after_hours: float = Field(default=72, ge=0, description="After this, a window with no signal is missed.")
    owner: str = Field(description="Owning team, named in alerts.")
    alert_block: str = Field(
        default="custom-webhook/lakeops-alerts",
        description="Notification block for alerts, as <block type slug>/<document name>.",
    )

    def contract(self) -> ReadinessContract:
        """The core contract."""
        return ReadinessContract(
            dataset=self.dataset, producer=self.producer, consumer=self.consumer, expected_at=self.expected_at,
            buffer=timedelta(seconds=self.buffer_seconds), max_fallback_age=timedelta(days=self.max_fallback_age_days),
            give_up_after=timedelta(hours=self.give_up_after_hours), owner=self.owner, alert_block=self.alert_block,
        )  # fmt: skip
