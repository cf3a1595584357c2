"""Freshness lag: Bronze commit -> Silver commit (one hop) and -> Gold commit (two hops).

Runs the same pipeline side by side in one process, each on its own Prefect server and lake: lakeops'
setup (prefect.yaml deployments, every Silver and Gold window audited before its commit) on the warm
worker and on Prefect's process worker, and stock `flow.serve()` defaults, on local SQLite servers;
then lakeops (warm) with the server on PostgreSQL; then the production profile (two API servers
behind the balancer, the services process, Redis, basic auth, the catalog on PostgreSQL, the
warehouse on S3 served by moto on loopback). A window lands every `--interval` seconds (a source
delivering on a clock, as daily and hourly ones do). Lags come from the Iceberg snapshots' commit times.

    .venv/bin/python benchmarks/freshness_lag.py [--windows 20] [--interval 15] [--modes warm,process,...]
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
from admin.production_stack import create_database, database_url, drop_database, production_stack, unreachable
from admin.setup import save_lakehouse, setup
from admin.stack import PROJECT_DIR, WORKER_ENV, LocalStack, free_port
from declarations.flights import landing
from lakeops.datasets import registry as registry_file
from lakeops.datasets.windows import Window
from lakeops.settings import LakeSettings

FIRST_DAY = date(2013, 3, 1)
PG_DATABASE = f"lakeops_bench_{os.getpid()}"
MODES = ("warm", "process", "stock", "warm-pg", "production")
WORKERS = {"warm": "warm", "process": "process", "warm-pg": "warm", "production": "warm"}
DAGSTER_FASTEST_ONE_HOP = 5.1  # Dagster 1.13's fastest configuration, measured once on this machine (issue 15)


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def drive(settings: LakeSettings, windows: int, label: str, interval: float) -> list[runs.WindowTrace]:
    """The flights dataset's deployments (the same names on either server): lags of each day's window."""
    catalog = save_lakehouse(settings).catalog()
    registry = registry_file.load(settings.registry)
    flights = registry.dataset("flights")
    traces = []
    for offset in range(windows):
        day = FIRST_DAY + timedelta(days=offset)
        lands = time.monotonic() + interval
        landing.drop_day_file(settings.resolved_landing(), day)
        producer = runs.run_producer(flights, day)
        trace = runs.follow_window(catalog, registry, flights, Window(day), producer)
        print(f"  {label:10} {day}  one hop {trace.lag_s(1):5.1f}s  two hops {trace.lag_s(2):5.1f}s")
        traces.append(trace)
        time.sleep(max(0.0, lands - time.monotonic()))
    return traces


def measure(
    mode: str, windows: int, root: Path, interval: float, database_url: str | None = None
) -> list[runs.WindowTrace]:
    if mode in WORKERS:
        os.environ[WORKER_ENV] = WORKERS[mode]
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=root / mode)
    settings = LakeSettings(home=root / mode / "lake", registry=PROJECT_DIR / "datasets.yaml")
    env = {"LAKEOPS_REGISTRY": str(settings.registry)}  # flow runs read the same registry
    try:
        stack.start_server(port, ui=False, database_url=database_url)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            if mode != "stock":
                setup(stack, settings)
                stack.start_worker(**env)
                stack.wait_until_warm()
                return drive(settings, windows, mode, interval)
            save_lakehouse(settings)
            stack.spawn([sys.executable, "benchmarks/stock_serve.py"], stack.env(**env), stack.home / "serve.log")
            flights = registry_file.load(settings.registry).dataset("flights")
            wait_for(lambda: runs.deployment_id(runs.builder(flights.layer("gold").table)), timeout=120)
            return drive(settings, windows, mode, interval)
    finally:
        stack.stop()


def measure_production(windows: int, root: Path, admin_url: str, interval: float) -> list[runs.WindowTrace] | None:
    """The production profile (warm worker): its own stack, a fresh catalog database, a moto S3 server process."""
    import boto3
    from prefect_aws import AwsClientParameters, AwsCredentials

    if reason := unreachable(admin_url) or unreachable(os.environ.get("LAKEOPS_REDIS_URL", "redis://127.0.0.1:6379")):
        print(f"  (the production column is skipped: {reason})")
        return None
    home = root / "production"
    catalog = create_database(admin_url, "lakeops_bench_catalog")
    try:
        with production_stack(home, postgres_url=admin_url) as stack, temporary_settings(stack.client_settings()):
            s3_port = free_port()
            moto = str(Path(sys.executable).parent / "moto_server")
            stack.spawn([moto, "-H", "127.0.0.1", "-p", str(s3_port)], stack.env(), home / "moto.log")
            endpoint = f"http://127.0.0.1:{s3_port}"
            keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret", "region_name": "us-east-1"}
            wait_for(lambda: boto3.client("s3", endpoint_url=endpoint, **keys).create_bucket(Bucket="lakeops-bench"))
            AwsCredentials(**keys, aws_client_parameters=AwsClientParameters(endpoint_url=endpoint)).save(
                "bench-s3", overwrite=True
            )
            settings = LakeSettings(
                home=home / "lake",
                registry=PROJECT_DIR / "datasets.yaml",
                catalog_uri=database_url(admin_url, catalog, "psycopg2"),
                warehouse="s3://lakeops-bench/warehouse",
                aws_credentials_block="bench-s3",
            )
            os.environ[WORKER_ENV] = WORKERS["production"]
            setup(stack, settings)
            stack.start_worker(LAKEOPS_REGISTRY=str(settings.registry))
            stack.wait_until_warm()
            return drive(settings, windows, "production", interval)
    finally:
        drop_database(admin_url, catalog)


def wait_for(attempt, timeout: float = 60):  # noqa: ANN001, ANN201 - retry a call until it stops raising
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


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
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--interval", type=float, default=15.0, help="seconds from one window's landing to the next")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LAKEOPS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL for the warm-pg and production columns' Prefect servers; 'none' to skip them.",
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    print("Import cost of a fresh interpreter (what every cold flow run pays before it starts):")
    for module in ("prefect", "flows.build_layer", "flows.ingest", "great_expectations"):
        print(f"  import {module:<22} {import_cost(module):.2f}s")
    results: dict[str, list[runs.WindowTrace]] = {}
    with tempfile.TemporaryDirectory(prefix="lakeops-bench-") as tmp:
        for mode in (m for m in modes if m in ("warm", "process", "stock")):
            results[mode] = measure(mode, args.windows, Path(tmp), args.interval)
        if "warm-pg" in modes and args.postgres != "none" and (url := fresh_postgres_database(args.postgres)):
            results["warm-pg"] = measure("warm-pg", args.windows, Path(tmp), args.interval, url)
            asyncio.run(_admin_sql(args.postgres, f"DROP DATABASE IF EXISTS {PG_DATABASE}"))
        if "production" in modes and args.postgres != "none":
            if production := measure_production(args.windows, Path(tmp), args.postgres, args.interval):
                results["production"] = production
    report(results, args.windows, args.interval)


def report(results: dict[str, list[runs.WindowTrace]], windows: int, interval: float) -> None:
    modes = [m for m in MODES if m in results]
    print(f"\nFreshness lag over {windows} windows landing {interval:.0f} s apart, seconds. warm, process and stock:")
    print("Prefect server on SQLite (the embedded default); warm-pg: server on PostgreSQL; production: two API")
    print("servers, services process, Redis, PostgreSQL catalog, S3 warehouse (moto). lakeops audits every Silver")
    print("and Gold window before its commit. x stock = stock / warm, x process = process / warm (same server).")
    ratios = [("stock", "x stock"), ("process", "x process")]
    shown = [(m, label) for m, label in ratios if m in results and "warm" in results]
    print(f"  {'':16}" + "".join(f"{m:>12}" for m in modes) + "".join(f"{label:>11}" for _, label in shown))
    for label, hop, target in (("one hop", 1, 1.5), ("two hops", 2, 3.0)):
        for q in (50, 95):
            values = {m: p([t.lag_s(hop) for t in results[m]], q) for m in modes}
            cells = "".join(f"{values[m]:12.1f}" for m in modes)
            ratio_cells = "".join(f"{values[m] / values['warm']:11.1f}" for m, _ in shown)
            goal = f"   target warm p50 <= {target:.1f} s" if q == 50 else ""
            print(f"  {label + f' p{q}':16}{cells}{ratio_cells}{goal}")
    if "warm" in results:
        warm = p([t.lag_s(1) for t in results["warm"]], 50)
        print(
            f"  Dagster 1.13's fastest configuration, one hop {DAGSTER_FASTEST_ONE_HOP} s (measured once on this "
            f"machine, not run here): {DAGSTER_FASTEST_ONE_HOP / warm:.1f}x the warm worker's p50 (target >= 3x)"
        )


if __name__ == "__main__":
    main()
