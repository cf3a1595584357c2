"""Scale: TPC-H lineitem through lakeops at SF1 and SF10, beside a bare script and DuckDB.

Per scale factor, in one run:
- tpchgen-cli writes lineitem; it lands as one Parquet file per ship month;
- bare script: per month, Parquet in -> the same Silver and Gold transforms (declarations/tpch/v1.py,
  DuckDB over Arrow) -> Parquet out; no orchestration, no Iceberg; in a child process (its peak RSS);
- DuckDB's Q1 on the raw Parquet;
- lakeops backfill: the `backfill/backfill-tpch` deployment on a local server and the warm worker,
  every month but the last, landing -> Bronze -> Silver -> Gold with each window audited, windows on a
  local Dask cluster of each size --workers names for the scale factor (a run that fails is reported);
- steady state: the last month lands through the ingest deployment; its ready events start Silver then
  Gold: the two hops' latency;
- Q1 from the Gold table checked against DuckDB's on the raw Parquet (exact: decimal sums, counts);
- at SF1 (--release): the blue-green release of tpch v2 (v1 in pyarrow, not DuckDB) over every month
  through the release deployment: the colours' build, the comparison, the promotion, Q1 again.
Memory is the memory supervisor's record of each flow run (its cgroup, Dask workers included): the peak
(page cache included, which fills a cgroup to its limit) and the peak working set (what the run needed).
The pipeline tax is the backfill's time over the bare script's.

    .venv/bin/python benchmarks/scale.py [--sf 1,10] [--workers "1=1,2;10=1,2"]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect.settings import PREFECT_API_URL, temporary_settings
from pyiceberg.expressions import AlwaysTrue
from scale_runs import CUTOFF, UNKNOWN, Backfill, Memory, Release, backfill, peak_of, release

from admin import runs
from admin.setup import save_lakehouse, setup
from admin.stack import PROJECT_DIR, LocalStack, free_port
from declarations import tpch
from declarations.tpch import generate, q1, v1
from lakeops.datasets import registry as registry_file
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.settings import LakeSettings


@dataclass
class Figures:
    sf: float
    rows: int = 0
    months: int = 0
    generate_s: float = 0.0
    land_s: float = 0.0
    bare_s: float = 0.0
    bare_peak_mb: float = 0.0
    duckdb_q1_s: float = 0.0
    backfills: dict[int, Backfill] = field(default_factory=dict)  # Dask workers -> the run
    steady_hops_s: tuple[float, float] = (0.0, 0.0)
    steady_memory: Memory = UNKNOWN
    q1_exact: bool = False
    release: "Release | None" = None


def bare_script(landing: Path, out: Path) -> None:
    """The same transforms with no orchestration and no Iceberg: Parquet in, Parquet out, month by month."""
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((landing / "lineitem").glob("*.parquet")):
        rows = pq.read_table(path)
        lineage = {"_batch_id": pa.scalar(path.stem), "_ingested_at": pa.scalar(0, pa.timestamp("us", tz="UTC"))}
        for name, value in lineage.items():
            rows = rows.append_column(name, pa.repeat(value, len(rows)))
        silver = v1.to_silver(rows)
        pq.write_table(silver, out / f"silver-{path.stem}.parquet")
        pq.write_table(v1.to_gold(silver), out / f"gold-{path.stem}.parquet")


def timed_bare(landing: Path, out: Path) -> tuple[float, float]:
    """The bare script in a child process: its wall time and its own peak resident set (MB)."""
    started = time.monotonic()
    command = [sys.executable, __file__, "--bare", str(landing), str(out)]
    done = subprocess.run(command, check=True, cwd=PROJECT_DIR, capture_output=True, text=True)
    return time.monotonic() - started, float(done.stdout.split()[-1])


def reset_tables(settings: LakeSettings) -> None:
    """Drop the tpch tables (a backfill on another cluster size starts from empty tables)."""
    catalog = settings_catalog(settings)
    for layer in tpch.DATASET.layers:
        catalog.purge_table(layer.table.identifier)
    lake.ensure_tables(catalog, registry_file.load(settings.registry))


def settings_catalog(settings: LakeSettings):  # noqa: ANN201
    """The catalog the flow runs use: the lakehouse block's."""
    return save_lakehouse(settings).catalog()


def measure(sf: float, root: Path, workers: tuple[int, ...], release_at: tuple[float, ...] = (1.0,)) -> Figures:
    figures = Figures(sf)
    home = root / f"sf{sf:g}"
    started = time.monotonic()
    generated = generate.generate(sf, home / "tpchgen")
    figures.generate_s = time.monotonic() - started
    figures.rows = pq.read_metadata(generated).num_rows
    settings = LakeSettings(home=home / "lake", registry=PROJECT_DIR / "datasets.yaml")
    started = time.monotonic()
    months = generate.land_months(generated, settings.resolved_landing())
    figures.land_s, figures.months = time.monotonic() - started, len(months)
    print(f"SF{sf:g}: {figures.rows:,} rows in {len(months)} months", end="")
    print(f"; generated in {figures.generate_s:.1f} s, landed in {figures.land_s:.1f} s")
    figures.bare_s, figures.bare_peak_mb = timed_bare(settings.resolved_landing(), home / "bare")
    print(f"  bare script {figures.bare_s:.1f} s, peak {figures.bare_peak_mb:.0f} MB")
    started = time.monotonic()
    q1.duckdb_q1(settings.resolved_landing() / "lineitem", CUTOFF)
    figures.duckdb_q1_s = time.monotonic() - started
    last = months[-1]
    held = generate.month_file(settings.resolved_landing(), last)
    held_back = held.with_name(f"{last}.held")
    os.replace(held, held_back)  # the steady state's new month lands after the backfill
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=home)
    env = {"LAKEOPS_REGISTRY": str(settings.registry), "LAKEOPS_HOME": str(settings.home)}
    try:
        stack.start_server(port, ui=False)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            setup(stack, settings)
            stack.start_worker(LAKEOPS_USAGE_DIR=str(stack.home / "usage"), **env)
            stack.wait_until_warm()
            for count in workers:
                if figures.backfills:
                    reset_tables(settings)
                done = figures.backfills[count] = backfill(stack, count, months[-2])
                print(f"  backfill on {count} Dask worker(s): {done.seconds:.1f} s, {done.memory}", end="")
                where = {0: "in the flow's own process", None: f"on {count} worker(s), as asked"}.get(
                    done.ran_on, f"on {done.ran_on} worker(s)"
                )
                print(f", windows' own time {done.windows_s:.1f} s, ran {where}", end="")
                print(f"; FAILED {done.failed}" if done.failed else "")
            if figures.backfills[workers[-1]].failed:
                return figures  # the tables miss windows: no steady state, no Q1
            os.replace(held_back, held)
            registry = registry_file.load(settings.registry)
            catalog = settings_catalog(settings)
            dataset = registry.dataset("tpch")
            window = Window.parse(last, "month")
            trace = runs.follow_window(
                catalog, registry, dataset, window, runs.run_producer(dataset, window.day), timeout=600
            )
            figures.steady_hops_s = (trace.lag_s(1), trace.lag_s(2))
            figures.steady_memory = max(peak_of(stack, str(r.id)) for r in trace.runs)
            print(f"  steady state {last}: one hop {trace.lag_s(1):.1f} s, two hops {trace.lag_s(2):.1f} s")
            gold = lake.read_arrow(lake.load(catalog, dataset.layer("gold").table), AlwaysTrue())
            diffs = q1.same_q1(
                q1.q1_from_gold(gold, CUTOFF), q1.duckdb_q1(settings.resolved_landing() / "lineitem", CUTOFF)
            )
            figures.q1_exact = not diffs
            if diffs:
                print("  Q1 DIFFERS: " + "; ".join(diffs[:5]))
            if sf in release_at:
                done = figures.release = release(stack, catalog, dataset, settings.resolved_landing())
                print(
                    f"  release v2: {done.seconds:.1f} s, built {done.build_s:.1f} s, compared {done.compare_s:.1f} s",
                    end="",
                )
                print(f", promoted {done.promote_s:.2f} s, {done.memory}: {done.verdict}", end="")
                print(f"; FAILED {done.failed}" if done.failed else "")
    finally:
        stack.stop()
    return figures


def report(results: list[Figures]) -> None:
    print()
    print("TPC-H lineitem, landing -> Gold (Bronze, Silver, Gold; every window audited), this machine")
    columns = [("", 6), ("rows", 12), ("bare s", 9), ("rows/s", 11), ("workers", 8), ("lakeops s", 11)]
    columns += [("rows/s", 11), ("tax", 7), ("peak MB", 9), ("wset MB", 9), ("bare MB", 9), ("Q1 s", 7)]
    print("".join(f"{name:>{width}}" for name, width in columns))
    for f in results:
        for count, run in sorted(f.backfills.items()):
            fitted = "flow" if run.ran_on == 0 else run.ran_on  # 0: the flow's own process
            ran = str(count) if run.ran_on in (None, count) else f"{count}->{fitted}"  # asked -> fitted
            print(
                f"SF{f.sf:<4g}{f.rows:>12,}{f.bare_s:>9.1f}{f.rows / f.bare_s:>11,.0f}{ran:>8}{run.seconds:>11.1f}"
                f"{f.rows / run.seconds:>11,.0f}{run.seconds / f.bare_s:>6.1f}x{run.memory.peak_mb:>9.0f}"
                f"{run.memory.working_set_mb:>9.0f}"
                f"{f.bare_peak_mb:>9.0f}{f.duckdb_q1_s:>7.2f}" + ("  FAILED: " + run.failed if run.failed else "")
            )
        if 1 in f.backfills and 2 in f.backfills and not (f.backfills[1].failed or f.backfills[2].failed):
            # Two asked for may have run in the flow's process: one window filled the limit (flows.fanout.run_fitted).
            to = "the flow's own process (2 asked for)" if f.backfills[2].ran_on == 0 else "2 Dask workers"
            ratio = f.backfills[1].seconds / f.backfills[2].seconds
            print(f"SF{f.sf:g} speed-up from 1 Dask worker to {to}: {ratio:.2f}x")
    print()
    for f in results:
        one, two = f.steady_hops_s
        if one:
            print(
                f"SF{f.sf:g} steady state (one new month): Bronze -> Silver {one:.1f} s, -> Gold {two:.1f} s, "
                f"{f.steady_memory}; Q1 from Gold {'equals' if f.q1_exact else 'DIFFERS FROM'} DuckDB's"
            )
    for f in results:
        if (r := f.release) is not None:
            print(
                f"SF{f.sf:g} release of v2 (v1 rewritten in pyarrow) over every month: {r.seconds:.1f} s; both colours "
                f"built in {r.build_s:.1f} s, compared in {r.compare_s:.1f} s, promoted in {r.promote_s:.2f} s; "
                f"{r.memory}; Q1 from the promoted Gold {'equals' if r.q1_exact else 'DIFFERS FROM'} "
                f"DuckDB's" + (f"; FAILED {r.failed}" if r.failed else "")
            )
    print("tax = lakeops backfill (all months but the last) / the bare script over all months")
    print("workers a -> b: asked for a, the run's memory limit held b (flows.fanout.run_fitted; flow: no cluster,")
    print("  the flow's own process ran the windows, one window filling the limit)")
    print("peak: the run's cgroup peak, page cache included; wset: its peak working set (without inactive cache)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sf", default="1,10", help="scale factors, comma-separated")
    parser.add_argument(
        "--workers", default="1=1,2;10=1,2", help="Dask workers to backfill on, per scale factor (SF=N,M;...)"
    )
    parser.add_argument("--release", default="1", help="scale factors to release tpch v2 at, comma-separated")
    parser.add_argument("--bare", nargs=2, metavar=("LANDING", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_script(Path(args.bare[0]), Path(args.bare[1]))
        print(f"bare script peak MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}", flush=True)
        return
    plan = {float(k): tuple(int(n) for n in v.split(",")) for k, v in (x.split("=") for x in args.workers.split(";"))}
    with tempfile.TemporaryDirectory(prefix="lakeops-scale-") as root:
        release_at = tuple(float(x) for x in args.release.split(",") if x)
        results = [measure(float(sf), Path(root), plan.get(float(sf), (2,)), release_at) for sf in args.sf.split(",")]
    report(results)


if __name__ == "__main__":
    main()
