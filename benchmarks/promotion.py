"""Promotion time does not depend on output size: a release switch moves refs, it copies nothing.

For each output size (10k and 10M Silver rows, Gold 1/1000 of that), one run builds blue on main
and green on a release branch of real Iceberg tables (SQLite catalog, local warehouse), then times
the release switch (`promotion.move_all`, Silver then Gold, one atomic commit per table) and the
rollback, alternately, ROUNDS times each. Prints p50/p95 and the 10M/10k ratio (target <= 1.5,
and <= 100 ms absolute).

    .venv/bin/python benchmarks/promotion.py [--small 10000] [--large 10000000] [--rounds 20]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from admin.stack import PROJECT_DIR
from lakeops.datasets import registry as registry_file
from lakeops.datasets.names import TableRef
from lakeops.iceberg import lake
from lakeops.release import promotion
from lakeops.settings import LakeSettings

CHUNK = 1_000_000
DAYS = 365
REGISTRY = registry_file.load(PROJECT_DIR / "datasets.yaml")
SPECS = lake.table_specs(REGISTRY)
SILVER_FLIGHTS, GOLD_DAILY_DELAYS = (REGISTRY.layer(name).table for name in ("flights.silver", "flights.gold"))


def synthetic(ref: TableRef, rows: int, seed: int) -> pa.Table:
    """Rows of the table's real schema, spread over a year of daily partitions."""
    rng = np.random.default_rng(seed)
    schema = SPECS[ref].schema
    day = np.datetime64("2013-01-01") + rng.integers(0, DAYS, rows).astype("timedelta64[D]")
    columns = []
    for field in schema:
        if field.name == "flight_date":
            columns.append(pa.array(day))
        elif pa.types.is_integer(field.type):
            columns.append(pa.array(rng.integers(0, 2400, rows)))
        elif pa.types.is_floating(field.type):
            columns.append(pa.array(rng.normal(10, 30, rows)))
        elif pa.types.is_timestamp(field.type):
            columns.append(pa.array(day.astype("datetime64[us]")).cast(field.type))
        else:
            codes = np.array(["AA", "B6", "DL", "EWR", "JFK", "LGA", "UA", "WN"])
            columns.append(pa.array(codes[rng.integers(0, len(codes), rows)]))
    return pa.Table.from_arrays(columns, schema=schema)


def write(table, ref: TableRef, rows: int, seed: int, branch: str = lake.MAIN) -> int:  # noqa: ANN001
    """One commit whatever the size, so both sizes leave the same number of snapshots (metadata alike)."""
    chunks = [synthetic(ref, min(CHUNK, rows - start), seed + start) for start in range(0, rows, CHUNK)]
    table.append(pa.concat_tables(chunks), branch=branch)
    head = lake.head(table, branch)
    assert head is not None
    return head.snapshot_id


def prepare(home: Path, silver_rows: int) -> tuple:
    """Blue on main, green on a branch, for Silver (silver_rows) and Gold (1/1000 of it)."""
    settings = LakeSettings(home=home)
    catalog = lake.open_catalog("bench", lake.embedded_properties(settings))
    lake.ensure_tables(catalog, REGISTRY)
    moves = []
    for ref, rows in ((SILVER_FLIGHTS, silver_rows), (GOLD_DAILY_DELAYS, max(silver_rows // 1000, 10))):
        table = lake.load(catalog, ref)
        blue = write(table, ref, rows, seed=1)
        table.manage_snapshots().create_branch(blue, "release-bench-green").commit()
        green = write(table, ref, rows, seed=2, branch="release-bench-green")
        moves.append(promotion.Move(ref.identifier, blue, green))
    return catalog, moves


def time_switches(catalog, moves: list, rounds: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    promote, rollback = [], []
    props = {promotion.RELEASE_PROPERTY: "bench", promotion.VERSION_PROPERTY: "green"}
    for _ in range(rounds):
        started = time.perf_counter()
        promotion.move_all(catalog, moves, props)
        promote.append(time.perf_counter() - started)
        started = time.perf_counter()
        promotion.move_all(catalog, [m.reverse() for m in reversed(moves)], props)
        rollback.append(time.perf_counter() - started)
    return promote, rollback


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    results = {}
    for rows in (args.small, args.large):
        with tempfile.TemporaryDirectory(prefix="lakeops-bench-promotion-") as home:
            started = time.perf_counter()
            catalog, moves = prepare(Path(home), rows)
            built = time.perf_counter() - started
            promote, rollback = time_switches(catalog, moves, args.rounds)
            results[rows] = (promote, rollback)
            silver_rows = lake.load(catalog, SILVER_FLIGHTS).scan().count()
            print(
                f"{rows:>11,} Silver rows (counted {silver_rows:,}; blue+green written in {built:.1f} s): "
                f"promote p50 {statistics.median(promote) * 1000:.1f} ms p95 {p95(promote) * 1000:.1f} ms, "
                f"rollback p50 {statistics.median(rollback) * 1000:.1f} ms p95 {p95(rollback) * 1000:.1f} ms "
                f"(two tables, {args.rounds} rounds)",
                flush=True,
            )
    small, large = (statistics.median(results[r][0]) for r in (args.small, args.large))
    ratio = large / small
    print(
        f"\npromotion p50, {args.large:,} vs {args.small:,} rows: {large * 1000:.1f} ms vs {small * 1000:.1f} ms "
        f"= {ratio:.2f}x (target <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'}; "
        f"<= 100 ms: {'met' if large <= 0.1 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
