"""The CostModel block's prices: the warm worker's pool type is priced as the process worker's machines."""

from blocks.cost_model import CostModel, PoolPrices
from lakeops.datasets.names import WARM_WORKER_TYPE
from lakeops.metrics.cost import Prices


def test_the_warm_pool_type_takes_the_process_prices_unless_it_has_its_own() -> None:
    local = PoolPrices(cpu_hour=0.10, gb_hour=0.01)

    assert CostModel(pools={"process": local}).prices()[WARM_WORKER_TYPE] == Prices(**local.model_dump())
    own = PoolPrices(cpu_hour=0.5, gb_hour=0.05)
    priced = CostModel(pools={"process": local, WARM_WORKER_TYPE: own}).prices()
    assert priced[WARM_WORKER_TYPE] == Prices(**own.model_dump()) != priced["process"]
    assert WARM_WORKER_TYPE not in CostModel(pools={"ecs": PoolPrices()}).prices()  # then Fargate's default
