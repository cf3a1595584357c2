"""Freshness lag: Bronze commit -> Silver commit (one hop) and -> Gold commit (two hops).

Runs the same pipeline twice, side by side in one process: lakeops' setup (prefect.yaml deployments
on a process worker polling every second) and stock `flow.serve()` defaults. Each gets its own local
Prefect server and lake. Lags come from the Iceberg snapshots' commit times.

    .venv/bin/python benchmarks/freshness_lag.py [--windows 10]
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from prefect.settings import PREFECT_API_URL, temporary_settings

from admin import runs
from admin.setup import save_lakehouse, setup
from admin.stack import PROJECT_DIR, LocalStack, free_port
from declarations.flights import landing
from lakeops.datasets import registry as registry_file
from lakeops.datasets.windows import Window
from lakeops.settings import LakeSettings

FIRST_DAY = date(2013, 3, 1)
PG_DATABASE = f"lakeops_bench_{os.getpid()}"


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def drive(settings: LakeSettings, windows: int, label: str) -> list[runs.WindowTrace]:
    """The flights dataset's deployments (the same names on either server): lags of each day's window."""
    catalog = save_lakehouse(settings).catalog()
    registry = registry_file.load(settings.registry)
    flights = registry.dataset("flights")
    traces = []
    for offset in range(windows):
        day = FIRST_DAY + timedelta(days=offset)
        landing.drop_day_file(settings.resolved_landing(), day)
        producer = runs.run_producer(flights, day)
        trace = runs.follow_window(catalog, registry, flights, Window(day), producer)
        print(f"  {label:10} {day}  one hop {trace.lag_s(1):5.1f}s  two hops {trace.lag_s(2):5.1f}s")
        traces.append(trace)
    return traces


def measure(mode: str, windows: int, root: Path, database_url: str | None = None) -> list[runs.WindowTrace]:
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=root / mode)
    settings = LakeSettings(home=root / mode / "lake", registry=PROJECT_DIR / "datasets.yaml")
    env = {"LAKEOPS_REGISTRY": str(settings.registry)}  # flow runs read the same registry
    try:
        stack.start_server(port, ui=False, database_url=database_url)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            if mode.startswith("lakeops"):
                setup(stack, settings)
                stack.start_worker(**env)
                return drive(settings, windows, mode)
            save_lakehouse(settings)
            stack.spawn([sys.executable, "benchmarks/stock_serve.py"], stack.env(**env), stack.home / "serve.log")
            flights = registry_file.load(settings.registry).dataset("flights")
            wait_for_deployment(runs.builder(flights.layer("gold").table))
            return drive(settings, windows, mode)
    finally:
        stack.stop()


def wait_for_deployment(name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            runs.deployment_id(name)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def import_cost(module: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=PROJECT_DIR, check=True)
    return time.perf_counter() - started


def fresh_postgres_database(admin_url: str) -> str | None:
    """Create an empty database for a Prefect server on `admin_url`'s PostgreSQL; None if unreachable."""
    import asyncpg

    try:
        asyncio.run(_admin_sql(admin_url, f"DROP DATABASE IF EXISTS {PG_DATABASE}", f"CREATE DATABASE {PG_DATABASE}"))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"  (no PostgreSQL at {admin_url}: {exc}; the PostgreSQL column is skipped)")
        return None
    return f"postgresql+asyncpg://{admin_url.split('://', 1)[1].rsplit('/', 1)[0]}/{PG_DATABASE}"


async def _admin_sql(admin_url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LAKEOPS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL to put a third run's Prefect server on (the production profile); 'none' to skip.",
    )
    args = parser.parse_args()
    print("Import cost of a fresh interpreter (what every flow run pays before it starts):")
    for module in ("prefect", "flows.build_layer", "flows.ingest"):
        print(f"  import {module:<22} {import_cost(module):.2f}s")
    database_url = fresh_postgres_database(args.postgres) if args.postgres != "none" else None
    with tempfile.TemporaryDirectory(prefix="lakeops-bench-") as tmp:
        results = {mode: measure(mode, args.windows, Path(tmp)) for mode in ("lakeops", "stock")}
        if database_url:
            results["lakeops-pg"] = measure("lakeops-pg", args.windows, Path(tmp), database_url)
            asyncio.run(_admin_sql(args.postgres, f"DROP DATABASE IF EXISTS {PG_DATABASE}"))
    report(results, args.windows)


def report(results: dict[str, list[runs.WindowTrace]], windows: int) -> None:
    modes = [m for m in ("lakeops", "stock", "lakeops-pg") if m in results]
    print(f"\nFreshness lag over {windows} windows, seconds. lakeops and stock: Prefect server on SQLite (the")
    print("embedded default); lakeops-pg: server on PostgreSQL. ratio = lakeops / stock, same server kind.")
    print(f"  {'':16}" + "".join(f"{m:>12}" for m in modes) + f"{'ratio':>8}   target")
    for label, hop, target in (("one hop", 1, 6.0), ("two hops", 2, 12.0)):
        for q in (50, 95):
            values = {m: p([t.lag_s(hop) for t in results[m]], q) for m in modes}
            goal = f"p50 <= {target:.0f}s" if q == 50 else ""
            cells = "".join(f"{values[m]:12.1f}" for m in modes)
            print(f"  {label + f' p{q}':16}{cells}{values['lakeops'] / values['stock']:8.2f}   {goal}")


if __name__ == "__main__":
    main()
