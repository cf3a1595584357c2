"""The `tpch` dataset's upstream: TPC-H lineitem from tpchgen-cli, landed as one Parquet file per ship month.

`generate` writes lineitem with tpchgen-cli (4.0); `land_months` / `land_month` split it by the month of
l_shipdate into `landing/lineitem/{YYYY-MM}.parquet`, the source path `lineitem/{window}.parquet`.

The Arrow schema tpchgen-cli writes (every column non-nullable, Parquet field ids 1..16 in this order):

    l_orderkey, l_partkey, l_suppkey                     int64
    l_linenumber                                         int32
    l_quantity, l_extendedprice, l_discount, l_tax       decimal128(15, 2)
    l_returnflag, l_linestatus                           string_view
    l_shipdate, l_commitdate, l_receiptdate              date32
    l_shipinstruct, l_shipmode, l_comment                string_view

A landed month file has exactly that schema (names, types, nullability, field ids): DuckDB does the
splitting and sorting but reads strings back as `string` and every column as nullable, so each batch is
cast to the generated file's schema before pyarrow writes it.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

# Bounded memory at SF10 (60M rows): DuckDB spills its sorts and partition buffers past this.
MEMORY_LIMIT = "1GB"
THREADS = 2

_MONTH_SQL = """
SELECT * FROM read_parquet($src, hive_partitioning = false)
WHERE l_shipdate >= $start AND l_shipdate < $end
ORDER BY l_orderkey, l_linenumber
"""
_SORT_SQL = "SELECT * FROM read_parquet($src, hive_partitioning = false) ORDER BY l_orderkey, l_linenumber"


def tpchgen_cli() -> str:
    """The tpchgen-cli executable of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "tpchgen-cli"
    found = str(beside) if beside.exists() else shutil.which("tpchgen-cli")
    if found is None:
        raise FileNotFoundError("tpchgen-cli not found: pip install tpchgen-cli")
    return found


def generate(scale_factor: float, out_dir: Path) -> Path:
    """Write TPC-H lineitem at `scale_factor` as one Parquet file in `out_dir`; return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [tpchgen_cli(), "parquet", "--scale-factor", str(scale_factor), "--tables", "lineitem"]
    command += ["--output-dir", str(out_dir), "--overwrite", "--quiet"]
    subprocess.run(command, check=True)
    return out_dir / "lineitem.parquet"


def parquet_source(path: Path | str) -> str:
    """What read_parquet takes for a Parquet file, a folder of them, or a glob."""
    return str(Path(path) / "*.parquet") if Path(path).is_dir() else str(path)


def month_file(landing: Path, month: str) -> Path:
    """Where the feed drops the lineitem rows shipped in `month` ("YYYY-MM")."""
    return landing / "lineitem" / f"{month}.parquet"


def month_bounds(month: str) -> tuple[date, date]:
    """The first day of `month` ("YYYY-MM") and of the month after it."""
    start = date.fromisoformat(f"{month}-01")
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start, end


def land_month(lineitem: Path, landing: Path, month: str) -> Path:
    """Land the rows of `lineitem` shipped in `month` ("YYYY-MM") as one Parquet file, atomically.

    Raises ValueError, landing nothing, when no row ships in `month`.
    """
    start, end = month_bounds(month)
    with _scratch(landing) as (con, _):
        rows = con.sql(_MONTH_SQL, params={"src": parquet_source(lineitem), "start": start, "end": end})
        return _write_atomic(rows.to_arrow_reader(), _schema(lineitem), month_file(landing, month))


def land_months(lineitem: Path, landing: Path) -> list[str]:
    """Land every ship month of `lineitem` (one file each); return the months written, in order.

    One scan of the source partitions it by month into a scratch folder; each month is then sorted
    and written on its own, so memory is bounded by a month rather than the table.
    """
    schema = _schema(lineitem)
    with _scratch(landing) as (con, scratch):
        split = scratch / "split"
        _partition_by_month(con, parquet_source(lineitem), split)
        months = sorted(p.name.removeprefix("ship_month=") for p in split.iterdir())
        for month in months:
            rows = con.sql(_SORT_SQL, params={"src": str(split / f"ship_month={month}" / "*.parquet")})
            _write_atomic(rows.to_arrow_reader(), schema, month_file(landing, month))
    return months


def _partition_by_month(con: duckdb.DuckDBPyConnection, source: str, split: Path) -> None:
    # COPY takes no prepared parameters, hence the quoted literals.
    query = f"SELECT *, strftime(l_shipdate, '%Y-%m') AS ship_month FROM read_parquet({_literal(source)})"
    con.execute(f"COPY ({query}) TO {_literal(str(split))} (FORMAT parquet, PARTITION_BY (ship_month))")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def _scratch(landing: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    """A bounded-memory DuckDB connection and a hidden scratch folder in the landing zone, both dropped after.

    The scratch folder (DuckDB's spill files, the month split) sits on the landing zone's disk: at SF10 the
    split is as large as the source, more than a small /tmp may hold.
    """
    landing.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=landing, prefix=".lineitem-scratch-") as folder:
        # Without a temp_directory an in-memory DuckDB spills into ./.tmp of whatever the cwd is.
        spill = str(Path(folder) / "spill")
        # Every query here sorts or partitions: the scan order is not worth keeping.
        config: dict[str, str | bool | int | float | list[str]] = {
            "memory_limit": MEMORY_LIMIT,
            "threads": THREADS,
            "temp_directory": spill,
            "preserve_insertion_order": False,
        }
        with duckdb.connect(config=config) as con:
            yield con, Path(folder)


def _schema(lineitem: Path) -> pa.Schema:
    """The generated lineitem's Arrow schema (of its first file when it is a folder)."""
    first = min(lineitem.glob("*.parquet")) if lineitem.is_dir() else lineitem
    return pq.read_schema(first)


def _write_atomic(batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path) -> Path:
    """Write `batches` cast to `schema` into `path` via a `.partial` file; an empty result is an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".parquet.partial")
    rows = 0
    # Decimals as INT64, like tpchgen-cli, rather than pyarrow's default fixed-length byte arrays.
    with pq.ParquetWriter(partial, schema, store_decimal_as_integer=True) as writer:
        for batch in batches:
            writer.write_batch(batch.cast(schema))
            rows += batch.num_rows
    if rows == 0:
        partial.unlink()
        raise ValueError(f"no lineitem rows to land in {path}")
    os.replace(partial, path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Generate lineitem at --sf into a temp dir and land all its months into --landing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sf", type=float, default=0.01, help="TPC-H scale factor (1 = 6M lineitem rows)")
    parser.add_argument("--landing", type=Path, required=True, help="landing zone; files go to lineitem/")
    parser.add_argument("--workdir", type=Path, default=None, help="where to generate (default: system temp)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="tpchgen-") as out:
        started = time.perf_counter()
        lineitem = generate(args.sf, Path(out))
        generated = time.perf_counter()
        months = land_months(lineitem, args.landing)
        landed = time.perf_counter()
        rows = pq.ParquetFile(lineitem).metadata.num_rows
    print(f"lineitem SF{args.sf:g}: {rows:,} rows generated in {generated - started:.1f}s")
    print(f"{len(months)} months {months[0]}..{months[-1]} landed in {args.landing} in {landed - generated:.1f}s")


if __name__ == "__main__":
    main()
