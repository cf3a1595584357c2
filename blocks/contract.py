"""The ReadinessContract block: one dataset's readiness contract, as flow runs read it."""

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import Field

from lakeops.readiness.contracts import ReadinessContract


class ReadinessContractBlock(Block):
    """When a dataset's signal is due, the grace buffer, what a stale fallback may use, who to alert."""

    _block_type_slug: ClassVar[str] = "lakeops-readiness-contract"
    _block_type_name: ClassVar[str] = "lakeops Readiness Contract"
    _description: ClassVar[str] = "Readiness contract of one dataset (written by `lakeops setup` from its declaration)."

    contract: ReadinessContract = Field(description="The contract, as derived from the dataset's declaration.")
