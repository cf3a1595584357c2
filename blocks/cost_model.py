"""The CostModel block: what an hour of CPU and of memory costs on each work pool type, as the metrics price runs."""

from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

from lakeops.datasets.names import WARM_WORKER_TYPE
from lakeops.metrics.cost import FARGATE, Prices


class PoolPrices(BaseModel):
    """The prices of one work pool type, and what a run that requests nothing is taken to use."""

    cpu_hour: float = Field(default=FARGATE.cpu_hour, ge=0, le=100, description="USD per vCPU-hour (core-hour).")
    gb_hour: float = Field(default=FARGATE.gb_hour, ge=0, le=100, description="USD per GB-hour of memory.")
    default_cpu: float = Field(
        default=FARGATE.default_cpu, ge=0, le=1024, description="vCPUs of a run whose job variables set no `cpu`."
    )
    default_memory_mb: float = Field(
        default=FARGATE.default_memory_mb,
        ge=0,
        le=4 * 1024 * 1024,
        description="Memory (MB) of a run whose job variables set no `memory`.",
    )


def _defaults() -> dict[str, PoolPrices]:
    return {"process": PoolPrices(), "ecs": PoolPrices()}


class CostModel(Block):
    """Prices per work pool type (process, ecs, ...); a type missing here is priced as Fargate on demand."""

    _block_type_slug: ClassVar[str] = "lakeops-cost-model"
    _block_type_name: ClassVar[str] = "lakeops Cost Model"
    _description: ClassVar[str] = (
        "USD per vCPU-hour and per GB-hour for each work pool type, applied to what each flow run requested "
        "(job variables cpu, memory) and to what it used (CPU seconds, peak memory). Default: Fargate on-demand, "
        "us-east-1, Linux x86 ($0.04048 per vCPU-hour, $0.004445 per GB-hour), for the process pool too."
    )

    pools: dict[str, PoolPrices] = Field(
        default_factory=_defaults,
        description="Prices by work pool type: `process` (a price per core-hour and per GB-hour of the machines "
        "the local worker runs on; also the warm worker's `lakeops-warm` "
        "unless it is given its own) and `ecs` (Fargate's, per vCPU-hour and GB-hour; `cpu` counts 1024 per vCPU).",
    )

    def prices(self) -> dict[str, Prices]:
        """The prices of each work pool type, as the metrics core takes them.

        The warm worker's pool type runs on the machines the process worker does: priced as `process`
        unless it has prices of its own.
        """
        prices = {pool: Prices(**p.model_dump()) for pool, p in self.pools.items()}
        if "process" in prices:
            prices.setdefault(WARM_WORKER_TYPE, prices["process"])
        return prices
