"""Prefect blocks: configuration only, one factory method each."""

from blocks.contract import ReadinessContractBlock
from blocks.lakehouse import IcebergLakehouse

__all__ = ["IcebergLakehouse", "ReadinessContractBlock"]
