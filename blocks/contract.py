"""The ReadinessContract block: one dataset's readiness contract, as flow runs read it."""

from datetime import time, timedelta
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field

from lakeops.readiness.contracts import ReadinessContract


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

    accept_additive_drift: bool = Field(default=False, description="A batch with only new columns enters Bronze.")
    allowed_lateness_days: int = Field(default=0, ge=0, description="Late records up to this many days extend.")
    adaptive_lateness: bool = Field(default=False, description="Learn the allowance from observed lags.")
    lateness_quantile: float = Field(default=0.99, gt=0, le=1, description="The observed lag quantile allowed.")

    @classmethod
    def of(cls, c: ReadinessContract) -> "ReadinessContractBlock":
        """The block holding a core contract."""
        return cls(
            dataset=c.dataset,
            producer=c.producer,
            consumer=c.consumer,
            expected_at=c.expected_at,
            buffer_seconds=c.buffer.total_seconds(),
            max_fallback_age_days=c.max_fallback_age.total_seconds() / 86400,
            give_up_after_hours=c.give_up_after.total_seconds() / 3600,
            owner=c.owner,
            alert_block=c.alert_block,
            accept_additive_drift=c.accept_additive_drift,
            allowed_lateness_days=c.allowed_lateness_days,
            adaptive_lateness=c.adaptive_lateness,
            lateness_quantile=c.lateness_quantile,
        )

    def contract(self) -> ReadinessContract:
        """The core contract."""
        return ReadinessContract(
            dataset=self.dataset,
            producer=self.producer,
            consumer=self.consumer,
            expected_at=self.expected_at,
            buffer=timedelta(seconds=self.buffer_seconds),
            max_fallback_age=timedelta(days=self.max_fallback_age_days),
            give_up_after=timedelta(hours=self.give_up_after_hours),
            owner=self.owner,
            alert_block=self.alert_block,
            accept_additive_drift=self.accept_additive_drift,
            allowed_lateness_days=self.allowed_lateness_days,
            adaptive_lateness=self.adaptive_lateness,
            lateness_quantile=self.lateness_quantile,
        )
