"""`lakeops replay` killed with SIGKILL halfway, then rerun: every window on the branch exactly once."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from pyiceberg.table.snapshots import ancestors_of

from declarations.flights import landing
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.versioning import replay

from .conftest import assert_gold_matches
from .flights import GOLD_DAILY_DELAYS, REGISTRY, SILVER_FLIGHTS
from .versioning_helpers import (
    build_day,
    canonical,
    current_id,
    dropper,
    expected_gold_v2,
    lake_settings,
    on_day,
    rows_of,
    rows_on,
)

DAYS = tuple(date(2013, 1, 1) + timedelta(days=i) for i in range(10))
WINDOWS = tuple(Window(d) for d in DAYS)
BRANCH = "replay-v2"
# --no-validate: the GX suites cost about 1 s a window, which would triple this test's time; the gate
# itself is tested in process (test_validation.py, test_tags.py).
REPLAY = [
    *(sys.executable, "-m", "admin.cli", "replay", "--dataset", "flights", "--version", "v2"),
    *("--start", "2013-01-01", "--end", "2013-01-31", "--no-validate"),
]


def replay_writes(catalog, ref) -> Counter:
    """How many times each window was written by a replay on the branch (one snapshot per write)."""
    table = catalog.load_table(ref.identifier)
    count: Counter = Counter()
    for snapshot in ancestors_of(lake.head(table, BRANCH), table.metadata):
        made = lake.provenance_of(snapshot)
        if made and made.operation == replay.OPERATION:
            count[made.window] += 1
    return count


def done(catalog, ref) -> dict[Window, tuple[int, dict[str, int]]]:
    return replay.completed(catalog.load_table(ref.identifier), BRANCH, "v2")


def test_a_replay_killed_halfway_resumes_without_duplicates_or_gaps(tmp_path: Path):
    home = tmp_path / "lake"
    settings = lake_settings(home)
    catalog = lake.open_catalog(settings.catalog_name, lake.embedded_properties(settings))
    lake.ensure_tables(catalog, REGISTRY)
    drop = dropper(tmp_path / "landing")
    for day in DAYS:
        build_day(catalog, drop, day)
    main_before = {ref: current_id(catalog, ref) for ref in (SILVER_FLIGHTS, GOLD_DAILY_DELAYS)}
    env = {**os.environ, "LAKEOPS_HOME": str(home), "LAKEOPS_CODE_VERSION": "kill-test", "PYTHONUNBUFFERED": "1"}

    first = subprocess.Popen(REPLAY, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while len(done(catalog, SILVER_FLIGHTS)) < 2:
            assert first.poll() is None, f"replay ended before it could be killed: {first.communicate()}"
            assert time.monotonic() < deadline, "replay made no progress"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    silver_before, gold_before = done(catalog, SILVER_FLIGHTS), done(catalog, GOLD_DAILY_DELAYS)
    assert 2 <= len(silver_before) < len(WINDOWS), silver_before
    assert len(gold_before) < len(WINDOWS)

    rerun = subprocess.run(REPLAY, env=env, capture_output=True, text=True, timeout=180)

    assert rerun.returncode == 0, rerun.stderr
    silver_after, gold_after = done(catalog, SILVER_FLIGHTS), done(catalog, GOLD_DAILY_DELAYS)
    assert set(silver_after) == set(gold_after) == set(WINDOWS)
    # Work finished before the kill was kept, not redone.
    assert {w: silver_after[w] for w in silver_before} == silver_before
    assert {w: gold_after[w] for w in gold_before} == gold_before
    lines = [line for line in rerun.stdout.splitlines() if " windows: 2013-" in line]
    assert len(lines) == len(WINDOWS), rerun.stdout
    skipped = {Window.parse(line.split(" windows: ")[1][:10]) for line in lines if "already replayed, skipped" in line}
    assert skipped == set(gold_before)
    # Each window written once on the branch: no duplicates, no gaps.
    for ref in (SILVER_FLIGHTS, GOLD_DAILY_DELAYS):
        assert replay_writes(catalog, ref) == {w.key: 1 for w in WINDOWS}, ref
    silver_branch, silver_main = rows_on(catalog, SILVER_FLIGHTS, BRANCH), rows_of(catalog, SILVER_FLIGHTS)
    assert silver_branch.groupby("flight_date").size().to_dict() == silver_main.groupby("flight_date").size().to_dict()
    assert not silver_branch.duplicated(["flight_date", "carrier", "flight", "origin", "sched_dep_time"]).any()
    pd.testing.assert_frame_equal(canonical(silver_branch, SILVER_FLIGHTS), canonical(silver_main, SILVER_FLIGHTS))
    gold = rows_on(catalog, GOLD_DAILY_DELAYS, BRANCH)
    assert gold.groupby("flight_date").size().to_dict() == dict.fromkeys(DAYS, 3)
    for day in DAYS:
        window = canonical(on_day(gold, day), GOLD_DAILY_DELAYS).drop(columns=["flight_date", "_batch_id"])
        assert_gold_matches(window, expected_gold_v2(landing.day_rows(day)))
    # Consumers on main saw none of it.
    assert {ref: current_id(catalog, ref) for ref in main_before} == main_before
