"""Versioning costs, each measured against its baseline in the same run.

(a) commit cost as commits accumulate: the 500th commit vs the first, with maintenance every
    10 commits (keep the newest 10 snapshots) and, side by side, without it (target with maintenance <= 2x);
(b) replay of 1 window out of 30 vs replay of all 30, timed in-process (no flow start-up) (<= 0.1x);
(c) reading a table as of an old snapshot vs reading the current one, same rows (<= 1.2x).

    .venv/bin/python benchmarks/versioning.py [--commits 500]
"""

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue

from admin.stack import PROJECT_DIR
from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.datasets import registry as registry_file
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance
from lakeops.ingest import batches
from lakeops.settings import LakeSettings
from lakeops.versioning import maintenance, replay, timetravel

RUN = pipeline.RunInfo("benchmark", "benchmark")
WINDOWS = [Window(date(2013, 1, 1) + timedelta(days=i)) for i in range(30)]
REGISTRY = registry_file.load(PROJECT_DIR / "datasets.yaml")
FLIGHTS = REGISTRY.dataset("flights")
SILVER, GOLD = REGISTRY.layer("flights.silver"), REGISTRY.layer("flights.gold")
SILVER_FLIGHTS, GOLD_DAILY_DELAYS = SILVER.table, GOLD.table


def fresh_catalog(root: Path, name: str) -> Catalog:
    settings = LakeSettings(home=root / name)
    catalog = lake.open_catalog(name, lake.embedded_properties(settings))
    lake.ensure_tables(catalog, REGISTRY)
    return catalog


def timed(fn, *args) -> float:  # noqa: ANN001, ANN002
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def gold_rows(windows: list[Window], i: int) -> pd.DataFrame:
    n = 3 * len(windows)
    return pd.DataFrame(
        {
            "flight_date": [w.day for w in windows for _ in range(3)],
            "origin": ["EWR", "JFK", "LGA"] * len(windows),
            "flights": [i + 1] * n,
            "cancelled": [0] * n,
            "mean_dep_delay": [1.0] * n,
            "mean_arr_delay": [2.0] * n,
            "on_time_arrivals": [1] * n,
            "_batch_id": [f"b{i}"] * n,
        }
    )


def commit_costs(catalog: Catalog, commits: int, maintain_every: int | None) -> tuple[list[float], list[float]]:
    """Seconds per tiny window overwrite (3 rows) on gold.daily_delays, commit by commit.

    The table first gets its 30 windows in one commit, so that the first timed commit works on the
    same data layout as the 500th: what is measured is the growth with the number of commits.
    """
    table = lake.load(catalog, GOLD_DAILY_DELAYS)
    seed = Provenance("benchmark", "benchmark", "", "seed")
    lake.replace_rows(table, lake.to_arrow(gold_rows(WINDOWS, 0), GOLD.schema), AlwaysTrue(), seed)
    policy = maintenance.RetentionPolicy(keep_last=10, max_age=timedelta(0), orphan_grace=timedelta(0))
    made_by = Provenance("benchmark", "benchmark", "", "", operation="maintenance")
    costs, upkeep = [], []
    for i in range(commits):
        window = WINDOWS[i % len(WINDOWS)]
        arrow = lake.to_arrow(gold_rows([window], i), GOLD.schema)
        provenance = Provenance("benchmark", "benchmark", window.key, f"b{i}")
        costs.append(timed(lake.replace_rows, table, arrow, GOLD.window.filter(window), provenance))
        if maintain_every and (i + 1) % maintain_every == 0:
            now = datetime.now(UTC)
            refs = (GOLD_DAILY_DELAYS,)
            upkeep.append(timed(maintenance.maintain, catalog, REGISTRY, refs, policy, made_by, now))
            table = lake.load(catalog, GOLD_DAILY_DELAYS)
    return costs, upkeep


def build_month(catalog: Catalog, landing_dir: Path) -> None:
    for window in WINDOWS:
        batch = batches.read_raw(landing.drop_day_file(landing_dir, window.day), window)
        bronze = pipeline.land(catalog, FLIGHTS, batch, RUN).own
        silver = pipeline.build(
            catalog, REGISTRY, "flights.silver", window, {"flights.bronze": bronze.snapshot_id}, RUN
        )
        pipeline.build(catalog, REGISTRY, "flights.gold", window, {"flights.silver": silver.snapshot_id}, RUN)


def replay_seconds(catalog: Catalog, windows: list[Window], branch: str) -> float:
    def go() -> None:
        plan = replay.plan(catalog, REGISTRY, "flights", "v2", windows[0].day, windows[-1].day, branch)
        replay.run(catalog, REGISTRY, plan, RUN)

    return timed(go)


def read_seconds(catalog: Catalog, as_of: timetravel.AsOf, repeat: int = 7) -> float:
    table = lake.load(catalog, SILVER_FLIGHTS)
    return statistics.median(timed(lambda: timetravel.read_as_of(table, as_of)) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=500)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lakeops-bench-"))

    print(f"(a) {args.commits} tiny window overwrites on gold.daily_delays (SQLite catalog, local files)")
    for label, every in (("maintenance every 10", 10), ("without maintenance", None)):
        costs, upkeep = commit_costs(fresh_catalog(root, f"commits{every}"), args.commits, every)
        first, last = statistics.median(costs[:5]), statistics.median(costs[-10:])
        upkept = f"  (a maintenance run: {statistics.median(upkeep) * 1000:.0f} ms)" if upkeep else ""
        print(
            f"    {label:<21} first 5 {first * 1000:5.1f} ms  last 10 {last * 1000:5.1f} ms  "
            f"ratio {last / first:4.2f}x{upkept}"
        )

    print("(b) replay v2 of 30 daily windows (about 27,000 Silver rows) into a branch, in-process")
    catalog = fresh_catalog(root, "month")
    build_month(catalog, root / "landing")
    one = replay_seconds(catalog, WINDOWS[14:15], "bench-one")
    all_ = replay_seconds(catalog, WINDOWS, "bench-all")
    print(f"    1 window {one:6.2f} s   30 windows {all_:6.2f} s   ratio {one / all_:5.3f}x")

    print("(c) read silver.flights (30 windows) as of an old snapshot vs current, same rows")
    old = lake.load(catalog, SILVER_FLIGHTS).current_snapshot().snapshot_id
    for window in WINDOWS:  # rebuild every window: 30 newer commits on top of the old snapshot
        inputs = replay.recorded_sources(REGISTRY, SILVER, lake.load(catalog, SILVER_FLIGHTS))[window]
        pipeline.build(catalog, REGISTRY, "flights.silver", window, inputs, RUN)
    current = read_seconds(catalog, timetravel.AsOf())
    past = read_seconds(catalog, timetravel.AsOf(snapshot_id=old))
    depth = len(lake.load(catalog, SILVER_FLIGHTS).snapshots())
    print(
        f"    current {current * 1000:6.1f} ms   old ({depth} snapshots deep) {past * 1000:6.1f} ms   "
        f"ratio {past / current:5.2f}x"
    )


if __name__ == "__main__":
    main()
