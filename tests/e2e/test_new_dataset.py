"""A team adds its own dataset without touching lakeops/: a declaration and its transforms in a folder of
its own, a line in the registry file, `lakeops deployments` and a deploy. Then, on the real server: ingest,
Silver and Gold started by their triggers, a bad file quarantined and alerted, a release of a second version."""

import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from prefect.deployments import run_deployment
from pyiceberg.expressions import EqualTo

from admin import deployments, releases, runs
from admin.setup import deploy_all
from lakeops.datasets import registry as registry_file
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.release import release_log

pytestmark = pytest.mark.e2e

# The shop team's declaration, written as a team would write it: outside lakeops/, importing only its types.
DECLARATION = '''
"""The shop team's orders: one CSV per day -> bronze.orders -> silver.orders -> gold.daily_revenue."""

import pandas as pd
import pyarrow as pa

from lakeops.datasets.declaration import Dataset, Layer, Source
from lakeops.datasets.engines import on_pandas
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import WindowColumn

COLUMNS = {"order_id": pa.int64(), "order_date": pa.string(), "customer": pa.string(), "amount": pa.float64()}
SOURCE = Source(
    path="orders/{window}.csv", columns=COLUMNS, natural_key=("order_id",), event_time=WindowColumn("order_date")
)
SILVER = pa.schema([
    pa.field("order_day", pa.date32(), nullable=False), pa.field("order_id", pa.int64(), nullable=False),
    pa.field("customer", pa.string()), pa.field("amount", pa.float64()),
    pa.field("_batch_id", pa.string(), nullable=False), pa.field("_bronze_snapshot_id", pa.int64()),
])
REVENUE = pa.schema([
    pa.field("order_day", pa.date32(), nullable=False), pa.field("orders", pa.int64(), nullable=False),
    pa.field("revenue", pa.float64()), pa.field("_batch_id", pa.string()),
])
DAY = WindowColumn("order_day")


def to_silver(bronze: pd.DataFrame) -> pd.DataFrame:
    day = pd.to_datetime(bronze["order_date"]).dt.date
    rows = bronze.assign(order_day=day, customer=bronze["customer"].str.lower())
    return rows.sort_values("_ingested_at").drop_duplicates("order_id", keep="last").sort_values("order_id")


def revenue_v1(silver: pd.DataFrame) -> pd.DataFrame:
    return silver.groupby("order_day", as_index=False).agg(orders=("order_id", "size"), revenue=("amount", "sum"))


def revenue_v2(silver: pd.DataFrame) -> pd.DataFrame:
    """A refund (a negative amount) is not revenue."""
    return revenue_v1(silver.assign(amount=silver["amount"].clip(lower=0)))


def suite(gx):
    return [gx.expectations.ExpectColumnValuesToBeBetween(column="orders", min_value=1)]


DATASET = Dataset(
    name="orders",
    owner="shop-team",
    source=SOURCE,
    layers=(
        Layer("bronze", TableRef("bronze", "orders"), SOURCE.bronze_schema(), WindowColumn("order_date"),
              key=("order_id",), partition=("order_date",)),
        Layer("silver", TableRef("silver", "orders"), SILVER, DAY, key=("order_id",), partition=("order_day",),
              inputs=("orders.bronze",), transforms={"v1": on_pandas(to_silver), "v2": on_pandas(to_silver)},
              lineage="_bronze_snapshot_id"),
        Layer("gold", TableRef("gold", "daily_revenue"), REVENUE, DAY, key=("order_day",), partition=("order_day",),
              inputs=("orders.silver",), transforms={"v1": on_pandas(revenue_v1), "v2": on_pandas(revenue_v2)},
              suite=suite),
    ),
    release=("silver", "gold"),
)
'''
DAYS = (date(2024, 5, 1), date(2024, 5, 2))


def orders_of(day: date) -> pd.DataFrame:
    """A day of orders; the second order of each day is a refund."""
    base = day.toordinal() % 1000 * 10
    amounts = [12.5, -4.0, 30.0, 7.25]
    return pd.DataFrame(
        {
            "order_id": [base + i for i in range(len(amounts))],
            "order_date": day.isoformat(),
            "customer": ["Ann", "Bob", "ann", "Cy"],
            "amount": amounts,
        }
    )


@pytest.fixture(scope="module")
def shop(e2e, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The shop team's folder, its line in the registry file, prefect.yaml written from it, deployed."""
    folder = tmp_path_factory.mktemp("shop-team")
    (folder / "shop_orders").mkdir()
    (folder / "shop_orders" / "__init__.py").write_text(textwrap.dedent(DECLARATION))
    path = Path(e2e.settings.registry)
    body = yaml.safe_load(path.read_text())
    body["paths"] = [*body.get("paths", []), str(folder)]
    body["datasets"] = [*body["datasets"], "shop_orders"]
    path.write_text(yaml.safe_dump(body))
    registry_file.load.cache_clear()
    registry = registry_file.load(path)
    own = Registry((registry.dataset("orders"),))
    (folder / "prefect.yaml").write_text(deployments.render(own))
    deploy_all(e2e.stack, folder / "prefect.yaml")
    return registry


def drop(e2e, day: date, text: str) -> None:
    target = e2e.landing / "orders" / f"{day.isoformat()}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_a_new_dataset_runs_end_to_end_without_a_change_to_lakeops(e2e, shop):
    orders = shop.dataset("orders")
    gold = orders.layer("gold")
    for day in DAYS:
        drop(e2e, day, orders_of(day).to_csv(index=False))
        trace = runs.follow_window(e2e.catalog, shop, orders, Window(day), runs.run_producer(orders, day))
        assert [str(t) for t in trace.tables] == ["bronze.orders", "silver.orders", "gold.daily_revenue"]
        assert all(r.state.is_completed() for r in trace.runs), [r.state.name for r in trace.runs]
        built = lake.read(
            lake.load(e2e.catalog, gold.table), gold.window.filter(Window(day)), trace.snapshots[-1].snapshot_id
        )
        assert built["orders"].tolist() == [4]
        assert built["revenue"].tolist() == [pytest.approx(orders_of(day)["amount"].sum())]

    # A bad file: quarantined whole, nothing committed, the owner told.
    bad_day = date(2024, 5, 3)
    text = orders_of(bad_day).to_csv(index=False).replace("30.0", "thirty", 1)
    drop(e2e, bad_day, text)
    failed = runs.run_producer(orders, bad_day)
    assert failed.state.is_failed()
    kept = lake.read(lake.load(e2e.catalog, orders.quarantine), EqualTo("window", bad_day.isoformat()))
    assert sorted(kept["raw_line"].tolist()) == sorted(text.splitlines())
    assert set(kept["error_column"]) == {"amount"}
    bronze = orders.layer("bronze")
    assert lake.read(lake.load(e2e.catalog, bronze.table), bronze.window.filter(Window(bad_day))).empty
    alert = e2e.receiver.wait_for(f"bronze.orders {bad_day.isoformat()}", timeout=60)
    assert "shop-team" in alert.body and "ingest/bronze.orders" in alert.body

    # A release of v2 (refunds are not revenue): outside thresholds, held, approved, promoted.
    started = releases.start({"dataset": "orders", "green_version": "v2", "blue_version": "v1"})
    held = releases.wait_until_settled(started.id, timeout=300)
    assert held.state.is_paused(), held.state
    releases.decide(e2e.catalog, "orders", approve=True, reason="finance: refunds are not revenue", by="e2e")
    promoted = releases.wait_until_settled(held.id, timeout=300)
    assert promoted.state.is_completed() and promoted.state.name == "Promoted", promoted.state
    assert release_log.live_version(e2e.catalog, "orders") == "v2"
    plain = e2e.catalog.load_table("gold.daily_revenue").scan().to_pandas().sort_values("order_day")
    expected = [orders_of(d)["amount"].clip(lower=0).sum() for d in DAYS]
    assert plain["revenue"].tolist() == pytest.approx(expected)

    # The release deployment is the dataset's own, named after it.
    rolled = run_deployment(
        releases.rollback_deployment("orders"),
        parameters={"params": {"dataset": "orders", "reason": "e2e"}},
        timeout=120,
        poll_interval=0.5,
    )
    assert rolled.state.is_completed(), rolled.state
    plain = e2e.catalog.load_table("gold.daily_revenue").scan().to_pandas().sort_values("order_day")
    assert plain["revenue"].tolist() == pytest.approx([orders_of(d)["amount"].sum() for d in DAYS])
