"""Replay: re-run a transform version over a window range into a branch, from recorded Bronze snapshots.

Each Silver row records the Bronze snapshot it was built from (`_bronze_snapshot_id`), so a replay
reads exactly the input the published window was made of, not "latest Bronze". Output goes to a
branch of silver.flights and gold.daily_delays (`replay-<version>` unless named); what consumers
read (main) does not move. Every window's commit is recorded in the branch's snapshot summaries, so
a rerun after a crash skips what is already there.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from lakeops import transforms
from lakeops.build import pipeline
from lakeops.build.validation import Validator
from lakeops.datasets.names import BRONZE_FLIGHTS, GOLD_DAILY_DELAYS, SILVER_FLIGHTS
from lakeops.datasets.windows import Window
from lakeops.errors import SnapshotNotFound
from lakeops.iceberg import lake, tags

OPERATION = "replay"


@dataclass(frozen=True)
class WindowSource:
    """The Bronze snapshot a window is replayed from; `recorded` is False when Silver never built it."""

    window: Window
    bronze_snapshot_id: int
    recorded: bool


@dataclass(frozen=True)
class ReplayPlan:
    version: str
    branch: str
    sources: tuple[WindowSource, ...]

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(s.window for s in self.sources)


@dataclass(frozen=True)
class Progress:
    """Reported after each window: windows done of total (skipped ones included), rows, throughput."""

    window: Window
    done: int
    total: int
    skipped: bool
    rows: int
    elapsed_s: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def __str__(self) -> str:
        what = "already replayed, skipped" if self.skipped else "replayed"
        return (
            f"{self.done}/{self.total} windows: {self.window} {what}; "
            f"{self.rows} rows in {self.elapsed_s:.1f} s ({self.rows_per_second:,.0f} rows/s)"
        )


@dataclass(frozen=True)
class ReplayResult:
    """What a replay left on its branch: ready to hand to a blue-green comparison."""

    version: str
    branch: str
    replayed: tuple[Window, ...]
    skipped: tuple[Window, ...]
    silver_snapshot_id: int | None
    gold_snapshot_id: int | None
    rows: int


def branch_name(version: str) -> str:
    return f"replay-{version}"


def plan(
    catalog: Catalog,
    version: str,
    start: date | None = None,
    end: date | None = None,
    branch: str | None = None,
) -> ReplayPlan:
    """Windows in [start, end] with their recorded Bronze snapshots.

    `start` defaults to the window of Silver's last-known-good snapshot ("from the last known good
    state forward"), or to the first window when nothing has been validated yet; `end` to the last.
    """
    transforms.flights(version)  # an unknown version fails here, before any work
    if start and end and start > end:
        raise ValueError(f"replay range is empty: start {start} is after end {end}")
    silver, bronze = lake.load(catalog, SILVER_FLIGHTS), lake.load(catalog, BRONZE_FLIGHTS)
    recorded = recorded_sources(silver)
    bronze_head = bronze.current_snapshot()
    windows = set(recorded) | {Window(d) for d in lake.windows_in(bronze)}
    first = Window.parse(start) if start else _last_known_good_window(silver)
    last = Window.parse(end) if end else None
    chosen = sorted(w for w in windows if (first is None or w >= first) and (last is None or w <= last))
    sources = []
    for window in chosen:
        snapshot_id = recorded.get(window) or (bronze_head.snapshot_id if bronze_head else None)
        if snapshot_id is None or bronze.snapshot_by_id(snapshot_id) is None:
            raise SnapshotNotFound(f"{BRONZE_FLIGHTS} snapshot {snapshot_id} recorded for {window} no longer exists")
        sources.append(WindowSource(window, snapshot_id, window in recorded))
    return ReplayPlan(version, branch or branch_name(version), tuple(sources))


def recorded_sources(silver: Table) -> dict[Window, int]:
    """Window -> the Bronze snapshot its published Silver rows were built from."""
    if silver.current_snapshot() is None:
        return {}
    rows = lake.read(silver, AlwaysTrue(), columns=("flight_date", "_bronze_snapshot_id")).dropna()
    pairs = rows.drop_duplicates("flight_date")
    return {Window.parse(d): int(s) for d, s in zip(pairs["flight_date"], pairs["_bronze_snapshot_id"], strict=True)}


def run(
    catalog: Catalog,
    replay: ReplayPlan,
    run_info: pipeline.RunInfo,
    validate: Validator | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    operation: str = OPERATION,
) -> ReplayResult:
    """Replay Silver then Gold for each planned window on the branch; windows already there are skipped.

    `operation` is recorded in each commit's provenance (a release builds its colours as `release`).
    """
    silver, gold = lake.load(catalog, SILVER_FLIGHTS), lake.load(catalog, GOLD_DAILY_DELAYS)
    for table in (silver, gold):
        _ensure_branch(table, replay.branch)
    silver_done = completed(silver, replay.branch, replay.version, operation)
    gold_done = completed(gold, replay.branch, replay.version, operation)
    target = pipeline.Target(branch=replay.branch, operation=operation, validate=validate)
    replayed, skipped, rows, started = [], [], 0, time.monotonic()
    for done, source in enumerate(replay.sources, start=1):
        window, silver_id = source.window, None
        if silver_done.get(window, (None, None))[1] == source.bronze_snapshot_id:
            silver_id = silver_done[window][0]
        else:
            signal = pipeline.build_silver(
                catalog, window, source.bronze_snapshot_id, run_info, version=replay.version, target=target
            )
            silver_id, rows = signal.snapshot_id, rows + signal.row_count
        if gold_done.get(window, (None, None))[1] != silver_id:
            pipeline.build_gold(catalog, window, silver_id, run_info, version=replay.version, target=target)
            replayed.append(window)
        else:
            skipped.append(window)
        if on_progress:
            elapsed = time.monotonic() - started
            on_progress(Progress(window, done, len(replay.sources), skipped[-1:] == [window], rows, elapsed))
    heads = [lake.head(lake.load(catalog, ref), replay.branch) for ref in (SILVER_FLIGHTS, GOLD_DAILY_DELAYS)]
    return ReplayResult(
        replay.version,
        replay.branch,
        tuple(replayed),
        tuple(skipped),
        *(h.snapshot_id if h else None for h in heads),
        rows,
    )


def completed(
    table: Table, branch: str, version: str, operation: str = OPERATION
) -> dict[Window, tuple[int, int | None]]:
    """Window -> (snapshot id, input snapshot id) of the newest `operation` commit of `version` on `branch`."""
    found: dict[Window, tuple[int, int | None]] = {}
    head = lake.head(table, branch)
    for snapshot in ancestors_of(head, table.metadata) if head else ():
        made = lake.provenance_of(snapshot)
        if not made or made.operation != operation or made.branch != branch or made.transform_version != version:
            continue
        window = Window.parse(made.window)
        found.setdefault(window, (snapshot.snapshot_id, next(iter(made.inputs.values()), None)))
    return found


def _ensure_branch(table: Table, branch: str) -> None:
    """Fork `branch` from main's current snapshot unless it exists (a rerun resumes on it)."""
    current = table.current_snapshot()
    if lake.head(table, branch) is None and current is not None:
        table.manage_snapshots().create_branch(current.snapshot_id, branch).commit()


def _last_known_good_window(silver: Table) -> Window | None:
    good = tags.last_known_good(silver)
    made = lake.provenance_of(good) if good else None
    return Window.parse(made.window) if made and made.window else None
