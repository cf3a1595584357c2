"""TPC-H lineitem through the core at a small scale factor: Parquet months land in Bronze, Silver and Gold
are built per month in DuckDB over Arrow, and TPC-H Q1 from the Gold table equals DuckDB's Q1 over the
same raw Parquet files exactly (sums and counts as decimals and integers)."""

import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import AlwaysTrue

from declarations import tpch
from declarations.tpch import generate, q1
from lakeops.build import pipeline, validation
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.iceberg import lake
from lakeops.ingest import batches
from lakeops.settings import LakeSettings

SCALE_FACTOR = 0.01  # 60,175 line items shipped over 83 months
MONTHS = ("1992-01", "1995-06", "1998-08", "1998-09")  # the first month, mid-range, and around Q1's cutoff
REGISTRY = Registry((tpch.DATASET,))
RUN = pipeline.RunInfo("run-1", "test")
GATED = pipeline.Target(validate=validation.validate)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate.generate(SCALE_FACTOR, tmp_path_factory.mktemp("tpchgen"))


@pytest.fixture(scope="module")
def landing(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("landing")
    for month in MONTHS:
        generate.land_month(generated, landing, month)
    return landing


def land(catalog, landing: Path, month: str) -> pipeline.Landing:  # noqa: ANN001
    window = Window.parse(month, "month")
    return pipeline.land(catalog, tpch.DATASET, batches.read_landed(landing, tpch.SOURCE, window), RUN)


def build(catalog, layer: str, month: str, snapshot_id: int):  # noqa: ANN001, ANN201
    window = Window.parse(month, "month")
    reads = REGISTRY.layer(layer).inputs[0]
    return pipeline.build(catalog, REGISTRY, layer, window, {reads: snapshot_id}, RUN, target=GATED)


@pytest.fixture(scope="module")
def built(landing: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Every chosen month landed, then built into Silver and Gold, each window gated by its suite."""
    home = tmp_path_factory.mktemp("lake")
    catalog = lake.open_catalog("tpch", lake.embedded_properties(LakeSettings(home=home)))
    lake.ensure_tables(catalog, REGISTRY)
    signals = {}
    for month in MONTHS:
        bronze = land(catalog, landing, month).own
        silver = build(catalog, "tpch.silver", month, bronze.snapshot_id)
        gold = build(catalog, "tpch.gold", month, silver.snapshot_id)
        signals[month] = (bronze, silver, gold)
    return catalog, signals


def table(catalog, layer: str) -> pa.Table:  # noqa: ANN001
    return lake.read_arrow(lake.load(catalog, REGISTRY.layer(layer).table), AlwaysTrue())


@pytest.mark.parametrize("cutoff", [date(1998, 9, 2), date(1998, 8, 17), date(1995, 6, 30), date(1992, 1, 20)])
def test_q1_from_the_gold_table_equals_duckdb_q1_on_the_raw_parquet_exactly(built, landing, cutoff):
    catalog, _ = built
    from_gold = q1.q1_from_gold(table(catalog, "tpch.gold"), cutoff)
    reference = q1.duckdb_q1(landing / "lineitem", cutoff)

    assert len(reference) > 0
    assert q1.same_q1(from_gold, reference) == []
    assert from_gold.schema.field("sum_charge").type == pa.decimal128(38, 6)


def test_every_line_item_of_a_month_reaches_silver_once_with_money_as_decimal(built, landing):
    catalog, signals = built
    silver = table(catalog, "tpch.silver")
    for month in MONTHS:
        delivered = pq.read_metadata(generate.month_file(landing, month)).num_rows
        bronze, built_silver, _ = signals[month]
        assert bronze.row_count == built_silver.row_count == delivered
    assert silver.schema.field("l_extendedprice").type == pa.decimal128(15, 2)
    assert len(silver) == len(
        pc.unique(
            pc.binary_join_element_wise(
                pc.cast(silver["l_orderkey"], pa.string()), pc.cast(silver["l_linenumber"], pa.string()), "/"
            )
        )
    )


def test_each_silver_row_records_the_bronze_snapshot_it_was_built_from(built):
    catalog, signals = built
    silver = table(catalog, "tpch.silver")
    for month in MONTHS:
        rows = silver.filter(pc.equal(silver["ship_month"], pa.scalar(date.fromisoformat(f"{month}-01"))))
        assert pc.unique(rows["_bronze_snapshot_id"]).to_pylist() == [signals[month][0].snapshot_id]


def test_the_same_month_landed_again_commits_nothing(built, landing):
    catalog, signals = built
    again = land(catalog, landing, MONTHS[0])

    assert (
        again.own.snapshot_id == lake.load(catalog, REGISTRY.layer("tpch.bronze").table).current_snapshot().snapshot_id
    )
    assert again.own.row_count == signals[MONTHS[0]][0].row_count


def rewrite(landing: Path, month: str, change) -> Path:  # noqa: ANN001
    """A copy of a month's file in a landing zone of its own, its table changed by `change`."""
    path = generate.month_file(landing, month)
    bad = landing.parent / f"{landing.name}-bad-{month}" / "lineitem" / path.name
    bad.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(change(pq.read_table(path)), bad)
    return bad.parent.parent


def test_a_value_out_of_its_range_is_malformed_naming_column_and_line(built, landing):
    catalog, _ = built

    def zero_quantity_on_row_3(rows: pa.Table) -> pa.Table:
        quantity = rows["l_quantity"].to_pylist()
        quantity[2] = 0
        return rows.set_column(
            rows.column_names.index("l_quantity"), "l_quantity", pa.array(quantity, rows["l_quantity"].type)
        )

    bad = rewrite(landing, "1995-06", zero_quantity_on_row_3)
    with pytest.raises(MalformedBatch, match="between 1 and 50") as caught:
        land(catalog, bad, "1995-06")
    assert (caught.value.column, caught.value.row) == ("l_quantity", 4)  # header is line 1, row 3 is line 4
    shutil.rmtree(bad)


def test_money_delivered_as_float_is_schema_drift(built, landing):
    catalog, _ = built

    def price_as_float(rows: pa.Table) -> pa.Table:
        index = rows.column_names.index("l_extendedprice")
        return rows.set_column(index, "l_extendedprice", pc.cast(rows["l_extendedprice"], pa.float64()))

    bad = rewrite(landing, "1995-06", price_as_float)
    with pytest.raises(SchemaDrifted, match=r"l_extendedprice.*decimal128\(15, 2\) -> float64"):
        land(catalog, bad, "1995-06")
    shutil.rmtree(bad)


def test_a_row_shipped_after_its_month_is_malformed(built, landing):
    catalog, _ = built

    def next_month_on_the_last_row(rows: pa.Table) -> pa.Table:
        dates = rows["l_shipdate"].to_pylist()
        dates[-1] = date(1995, 7, 1)
        return rows.set_column(rows.column_names.index("l_shipdate"), "l_shipdate", pa.array(dates, pa.date32()))

    bad = rewrite(landing, "1995-06", next_month_on_the_last_row)
    with pytest.raises(MalformedBatch, match="after window 1995-06") as caught:
        land(catalog, bad, "1995-06")
    assert caught.value.column == "l_shipdate"
    shutil.rmtree(bad)
