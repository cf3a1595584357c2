"""The TPC-H dataset: lineitem, one Parquet file per ship month -> bronze.lineitem -> silver.lineitem ->
gold.pricing_summary, from which TPC-H Q1 for any cutoff date is exact.

The scale test of lakeops: a month is about 75,000 rows at SF1 and 750,000 at SF10. Its transforms run
in DuckDB over Arrow (`v1`), or in pyarrow and Acero (`v2`, the same rows); no window goes through pandas.
"""

from declarations.tpch import suites, v1, v2
from declarations.tpch.schemas import GOLD, GOLD_KEY, NATURAL_KEY, NON_NULL, SILVER, SOURCE_COLUMNS
from lakeops.datasets.checks import Between, OneOf
from lakeops.datasets.declaration import Dataset, Layer, Source
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import WindowColumn

SHIP_DATE = WindowColumn("l_shipdate", grain="month")
SHIP_MONTH = WindowColumn("ship_month", grain="month")

SOURCE = Source(
    path="lineitem/{window}.parquet",
    format="parquet",
    columns=SOURCE_COLUMNS,
    natural_key=NATURAL_KEY,
    event_time=SHIP_DATE,
    non_null=NON_NULL,
    checks={
        "l_quantity": Between(1, 50),
        "l_discount": Between(0, 0.1),
        "l_tax": Between(0, 0.08),
        "l_returnflag": OneOf(("A", "N", "R")),
        "l_linestatus": OneOf(("F", "O")),
    },
    max_bytes=1024 * 2**20,  # a month at SF10 is about 30 MB; SF100 about 300 MB
)

DATASET = Dataset(
    name="tpch",
    owner="benchmark-team",
    description="TPC-H lineitem from tpchgen-cli, one Parquet file per month of l_shipdate.",
    source=SOURCE,
    layers=(
        Layer(
            "bronze",
            TableRef("bronze", "lineitem"),
            SOURCE.bronze_schema(),
            SHIP_DATE,
            key=NATURAL_KEY,
            description="Line items as delivered, typed, with batch id, source file and ingestion time.",
        ),
        Layer(
            "silver",
            TableRef("silver", "lineitem"),
            SILVER,
            SHIP_MONTH,
            key=NATURAL_KEY,
            partition=("ship_month",),
            inputs=("tpch.bronze",),
            transforms={"v1": v1.to_silver, "v2": v2.to_silver},
            suite=suites.silver,
            lineage="_bronze_snapshot_id",
            description="Line items cleaned and deduplicated on (l_orderkey, l_linenumber); money as decimal.",
        ),
        Layer(
            "gold",
            TableRef("gold", "pricing_summary"),
            GOLD,
            SHIP_MONTH,
            key=GOLD_KEY,
            partition=("ship_month",),
            inputs=("tpch.silver",),
            transforms={"v1": v1.to_gold, "v2": v2.to_gold},
            suite=suites.gold,
            description="Sums and counts per ship date, return flag and line status: TPC-H Q1 for any cutoff.",
        ),
    ),
    default_version="v1",
    release=("silver", "gold"),
    # One month at a time: at SF10 (750,000 line items) a run stays well under this; the healer doubles it
    # after an out-of-memory kill.
    memory_mb=2048,
)
