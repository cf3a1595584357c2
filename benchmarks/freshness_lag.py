"""Freshness lag: Bronze commit -> Silver commit (one hop) and -> Gold commit (two hops).

Runs the same pipeline twice, side by side in one process: lakeops' setup (prefect.yaml deployments
on a process worker polling every second) and stock `flow.serve()` defaults. Each gets its own local
Prefect server and lake. Lags come from the Iceberg snapshots' commit times.

    .venv/bin/python benchmarks/freshness_lag.py [--windows 10]
"""

import argparse
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
from lakeops import landing
from lakeops.settings import LakeSettings
from lakeops.windows import Window

FIRST_DAY = date(2013, 3, 1)


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def drive(stack: LocalStack, settings: LakeSettings, windows: int, deployment: str) -> list[runs.WindowTrace]:
    catalog = save_lakehouse(settings).catalog()
    traces = []
    for offset in range(windows):
        day = FIRST_DAY + timedelta(days=offset)
        landing.drop_day_file(settings.resolved_landing(), day)
        producer = runs.run_producer(day, deployment)
        trace = runs.follow_window(catalog, Window(day), producer, deployment)
        print(f"  {deployment:8} {day}  one hop {trace.silver_lag_s:5.1f}s  two hops {trace.gold_lag_s:5.1f}s")
        traces.append(trace)
    return traces


def measure(mode: str, windows: int, root: Path) -> list[runs.WindowTrace]:
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=root / mode)
    settings = LakeSettings(home=root / mode / "lake")
    try:
        stack.start_server(port, ui=False)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            if mode == "lakeops":
                setup(stack, settings)
                stack.start_worker()
                return drive(stack, settings, windows, runs.DEPLOYMENT)
            save_lakehouse(settings)
            stack.spawn([sys.executable, "benchmarks/stock_serve.py"], stack.env(), stack.home / "serve.log")
            wait_for_deployment("build-gold-daily-delays/stock")
            return drive(stack, settings, windows, "stock")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=10)
    args = parser.parse_args()
    print("Import cost of a fresh interpreter (what every flow run pays before it starts):")
    for module in ("prefect", "flows.build_silver", "flows.ingest_bronze"):
        print(f"  import {module:<22} {import_cost(module):.2f}s")
    with tempfile.TemporaryDirectory(prefix="lakeops-bench-") as tmp:
        results = {mode: measure(mode, args.windows, Path(tmp)) for mode in ("lakeops", "stock")}
    print(f"\nFreshness lag over {args.windows} windows (seconds; ratio = lakeops / stock serve defaults)")
    print(f"  {'':16}{'lakeops':>10}{'stock':>10}{'ratio':>8}   target")
    for label, attr, target in (("one hop", "silver_lag_s", 6.0), ("two hops", "gold_lag_s", 12.0)):
        for q in (50, 95):
            ours = p([getattr(t, attr) for t in results["lakeops"]], q)
            stock = p([getattr(t, attr) for t in results["stock"]], q)
            goal = f"p50 <= {target:.0f}s" if q == 50 else ""
            print(f"  {label + f' p{q}':16}{ours:10.1f}{stock:10.1f}{ours / stock:8.2f}   {goal}")


if __name__ == "__main__":
    main()
