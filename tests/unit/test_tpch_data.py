"""The `tpch` data helpers at SF 0.01 (~60k lineitem rows): month landing, Gold rows and Q1 from Gold.

Every expectation comes from the generated Parquet itself (pyarrow, or Q1 run by DuckDB on it).
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from declarations.tpch import generate, q1, v1, v2

SORT = [("l_orderkey", "ascending"), ("l_linenumber", "ascending")]
STANDARD_CUTOFF = date(1998, 12, 1) - timedelta(days=90)  # 1998-09-02, TPC-H's default DELTA
MID_MONTH = date(1995, 6, 17)  # TPC-H's "current date": where line status turns from F to O
BEFORE_DATA = date(1991, 12, 31)


@dataclass(frozen=True)
class Landed:
    raw: Path
    landing: Path
    months: list[str]


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Landed:
    raw = generate.generate(0.01, tmp_path_factory.mktemp("tpchgen"))
    landing = tmp_path_factory.mktemp("landing")
    return Landed(raw, landing, generate.land_months(raw, landing))


@pytest.fixture(scope="module")
def raw_rows(landed: Landed) -> pa.Table:
    return pq.read_table(landed.raw)


def sorted_rows(table: pa.Table) -> pa.Table:
    """`table` in (l_orderkey, l_linenumber) order; pyarrow cannot `take` string_view, so as plain strings."""
    plain = pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in table.schema])
    return table.cast(plain).sort_by(SORT)


def is_sorted(table: pa.Table) -> bool:
    order = pc.sort_indices(table.select([key for key, _ in SORT]), sort_keys=SORT)
    return bool(order.equals(pa.array(range(table.num_rows), pa.uint64())))


def month_tables(landed: Landed) -> list[pa.Table]:
    return [pq.read_table(generate.month_file(landed.landing, m)) for m in landed.months]


def test_generate_writes_decimal_money(landed: Landed) -> None:
    schema = pq.read_schema(landed.raw)
    for name in ("l_quantity", "l_extendedprice", "l_discount", "l_tax"):
        assert schema.field(name).type == pa.decimal128(15, 2)
    assert schema.field("l_shipdate").type == pa.date32()


def test_months_are_every_file_in_order(landed: Landed) -> None:
    on_disk = sorted(p.name for p in (landed.landing / "lineitem").iterdir())
    assert on_disk == [f"{m}.parquet" for m in landed.months]
    assert landed.months == sorted(landed.months)
    assert sorted(p.name for p in landed.landing.iterdir()) == ["lineitem"]  # no scratch or partial left


def test_months_cover_every_row_once(landed: Landed, raw_rows: pa.Table) -> None:
    landed_rows = pa.concat_tables(month_tables(landed))
    assert landed_rows.num_rows == pq.ParquetFile(landed.raw).metadata.num_rows
    assert sorted_rows(landed_rows).equals(sorted_rows(raw_rows))


def test_month_files_keep_the_generated_schema(landed: Landed) -> None:
    generated = pq.read_schema(landed.raw)
    for month in landed.months:
        assert pq.read_schema(generate.month_file(landed.landing, month)).equals(generated, check_metadata=True)


def test_each_month_file_holds_its_month_sorted(landed: Landed) -> None:
    for month, table in zip(landed.months, month_tables(landed), strict=True):
        start, end = generate.month_bounds(month)
        assert table.num_rows > 0
        assert pc.min(table["l_shipdate"]).as_py() >= start
        assert pc.max(table["l_shipdate"]).as_py() < end
        assert is_sorted(table)


def test_land_month_equals_its_file_from_land_months(landed: Landed, tmp_path: Path) -> None:
    month = landed.months[len(landed.months) // 2]
    path = generate.land_month(landed.raw, tmp_path, month)
    assert path == generate.month_file(tmp_path, month)
    assert pq.read_table(path).equals(pq.read_table(generate.month_file(landed.landing, month)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lineitem"]


def test_land_month_refuses_a_month_without_rows(landed: Landed, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1980-01"):
        generate.land_month(landed.raw, tmp_path, "1980-01")
    assert not generate.month_file(tmp_path, "1980-01").exists()


def test_gold_rows_have_the_gold_schema(raw_rows: pa.Table) -> None:
    gold = q1.gold_rows(raw_rows)
    assert gold.schema.equals(q1.GOLD_SCHEMA)
    assert tuple(gold.column_names) == q1.GOLD_COLUMNS
    assert pc.sum(gold["count_order"]).as_py() == raw_rows.num_rows
    first_days = pc.strftime(gold["l_shipdate"], format="%Y-%m-01")
    assert pc.cast(gold["ship_month"], pa.string()).equals(first_days)


def test_gold_rows_refuse_a_null_group_key(raw_rows: pa.Table) -> None:
    column = raw_rows.schema.get_field_index("l_shipdate")
    dates = raw_rows["l_shipdate"].to_pylist()
    dates[0] = None
    nulled = raw_rows.set_column(column, pa.field("l_shipdate", pa.date32()), pa.array(dates, pa.date32()))
    with pytest.raises(ValueError, match="non-nullable"):
        q1.gold_rows(nulled)


@pytest.mark.parametrize("cutoff", [STANDARD_CUTOFF, MID_MONTH], ids=str)
def test_q1_from_gold_equals_q1_on_raw_parquet(landed: Landed, raw_rows: pa.Table, cutoff: date) -> None:
    expected = q1.duckdb_q1(landed.raw, cutoff)
    got = q1.q1_from_gold(q1.gold_rows(raw_rows), cutoff)
    assert expected.num_rows > 0
    assert pc.sum(expected["count_order"]).as_py() == pc.sum(pc.less_equal(raw_rows["l_shipdate"], cutoff)).as_py()
    assert q1.same_q1(expected, got) == []
    assert got.schema.equals(expected.schema)


def test_q1_before_any_data_is_empty(landed: Landed, raw_rows: pa.Table) -> None:
    expected = q1.duckdb_q1(landed.raw, BEFORE_DATA)
    got = q1.q1_from_gold(q1.gold_rows(raw_rows), BEFORE_DATA)
    assert expected.num_rows == got.num_rows == 0
    assert q1.same_q1(expected, got) == []


def test_duckdb_q1_reads_a_folder_of_months(landed: Landed) -> None:
    folder = q1.duckdb_q1(landed.landing / "lineitem", STANDARD_CUTOFF)
    assert q1.same_q1(folder, q1.duckdb_q1(landed.raw, STANDARD_CUTOFF)) == []


def test_gold_of_months_concatenates_to_gold_of_all(landed: Landed, raw_rows: pa.Table) -> None:
    by_month = pa.concat_tables([q1.gold_rows(t) for t in month_tables(landed)])
    assert by_month.equals(q1.gold_rows(raw_rows))


def test_same_q1_reports_a_sum_off_by_a_cent(landed: Landed) -> None:
    result = q1.duckdb_q1(landed.raw, STANDARD_CUTOFF)
    prices = result["sum_base_price"].to_pylist()
    prices[1] += Decimal("0.01")
    column = result.schema.get_field_index("sum_base_price")
    off = result.set_column(column, result.schema.field(column), pa.array(prices, result.schema.field(column).type))
    flag, status = result["l_returnflag"][1].as_py(), result["l_linestatus"][1].as_py()
    diffs = q1.same_q1(result, off)
    assert len(diffs) == 1
    assert diffs[0].startswith(f"{flag}/{status} sum_base_price")


def test_same_q1_reports_averages_beyond_the_tolerance(landed: Landed) -> None:
    result = q1.duckdb_q1(landed.raw, STANDARD_CUTOFF)
    column = result.schema.get_field_index("avg_price")
    for factor, differs in [(1 + q1.AVG_REL_TOL / 10, False), (1 + q1.AVG_REL_TOL * 10, True)]:
        scaled = pc.multiply(result["avg_price"], factor)
        diffs = q1.same_q1(result, result.set_column(column, "avg_price", scaled))
        assert len(diffs) == (result.num_rows if differs else 0)


def test_same_q1_reports_missing_groups(landed: Landed) -> None:
    result = q1.duckdb_q1(landed.raw, STANDARD_CUTOFF)
    diffs = q1.same_q1(result, result.slice(1))
    first = (result["l_returnflag"][0].as_py(), result["l_linestatus"][0].as_py())
    assert diffs == [f"group {first} only in the first result"]


def bronze_like(month: pa.Table, ingested_at: int = 0) -> pa.Table:
    """A landed month as Bronze holds it: plain strings, the batch and its ingestion time."""
    rows = sorted_rows(month)
    rows = rows.append_column("_batch_id", pa.array(["b1"] * rows.num_rows))
    return rows.append_column("_ingested_at", pa.array([ingested_at] * rows.num_rows, pa.timestamp("us", tz="UTC")))


def test_v2_in_pyarrow_builds_exactly_what_v1_builds_in_duckdb(landed: Landed) -> None:
    months = month_tables(landed)
    for month in (months[0], months[40], months[-1]):  # a first, a full and a last, partial month
        bronze = bronze_like(month)
        # The source re-sent three lines later, one with a new comment: both keep the last ingested copy.
        resent = bronze_like(month.slice(5, 3), ingested_at=10)
        resent = resent.set_column(resent.schema.get_field_index("l_comment"), "l_comment", pa.array(["x", "y", "z"]))
        bronze = pa.concat_tables([resent.cast(bronze.schema), bronze])

        silver = v1.to_silver(bronze)
        assert v2.to_silver(bronze).equals(silver)
        assert silver.num_rows == month.num_rows and silver["l_comment"][5].as_py() == "x"
        assert v2.to_gold(silver).equals(v1.to_gold(silver))
    assert v2.to_silver(bronze.slice(0, 0)).equals(v1.to_silver(bronze.slice(0, 0)))
