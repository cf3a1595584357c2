"""Concurrent writer processes on one table: no commit lost, one snapshot per commit, last writer wins whole.

Each writer process (spawn) loads bronze.flights, waits at a barrier, then commits its batches,
replacing by source file as Bronze does. As every writer loads the table before any commits, the
first commits of all writers are planned on one head and all but one must lose the
compare-and-swap: retries >= writers - 1 whatever the timing. Run on a SQLite catalog and on
PostgreSQL (a fresh database per test on 127.0.0.1:5432, dropped after; skipped, saying why, when
the server cannot be reached). `benchmarks/contention.py` runs the same scenarios at a larger size.
"""

import contextlib
import functools
import itertools
import multiprocessing
import pickle
import queue
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from pyiceberg.expressions import AlwaysTrue, EqualTo
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from declarations.flights import landing
from lakeops.datasets.windows import Window
from lakeops.iceberg import commits, lake
from lakeops.iceberg.provenance import Provenance
from lakeops.ingest import batches

from .flights import BRONZE, BRONZE_FLIGHTS, REGISTRY, SOURCE

FIRST_DAY = date(2013, 1, 1)
SAME_SOURCE = f"{FIRST_DAY.isoformat()}.csv"
CATALOG = "contention"
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class Batch:
    """One commit of a writer: its rows replace those of one source file."""

    source: str
    batch_id: str
    rows: pa.Table


@dataclass(frozen=True)
class Report:
    """What one writer process saw: the snapshot each batch landed as, each commit that raised, retries."""

    landed: dict[str, int]
    lost: list[str]
    retries: int
    seconds: float  # from the barrier to its last commit


@dataclass(frozen=True)
class Run:
    batches: list[Batch]
    reports: list[Report]

    @property
    def seconds(self) -> float:
        """From the writers' release to the last commit."""
        return max(report.seconds for report in self.reports)

    @property
    def lost(self) -> list[str]:
        return [error for report in self.reports for error in report.lost]

    @property
    def retries(self) -> int:
        return sum(report.retries for report in self.reports)

    def size(self, batch_id: str) -> int:
        return next(len(b.rows) for b in self.batches if b.batch_id == batch_id)


def bronze_rows(day: date, batch_id: str, rows: int) -> pa.Table:
    """The first `rows` flights of `day` as Bronze holds them, under `batch_id`."""
    return lake.to_arrow(typed_day(day).head(rows).assign(_batch_id=batch_id), BRONZE.schema)


@functools.cache
def typed_day(day: date) -> pd.DataFrame:
    """The first 60 flights of `day`, parsed and with the lineage columns (parsed once per process)."""
    text = landing.day_rows(day).head(60).to_csv(index=False).encode()
    raw = batches.RawBatch(f"{day.isoformat()}.csv", Window(day), text)
    return batches.with_lineage(batches.parse(raw, SOURCE), raw, datetime.now(UTC))


def distinct_windows(writers: int, commits_each: int) -> list[list[Batch]]:
    """Writer w's i-th commit lands window w * commits + i: no two commits share a window."""
    plan = []
    for w in range(writers):
        days = [FIRST_DAY + timedelta(days=w * commits_each + i) for i in range(commits_each)]
        plan.append(
            [Batch(f"{d.isoformat()}.csv", f"w{w}-{i}", bronze_rows(d, f"w{w}-{i}", 20)) for i, d in enumerate(days)]
        )
    return plan


def same_window(writers: int, commits_each: int) -> list[list[Batch]]:
    """Every commit replaces the same day's file; no two batches have the same size, so a mix shows."""
    sizes = [[10 + w * commits_each + i for i in range(commits_each)] for w in range(writers)]
    return [
        [Batch(SAME_SOURCE, f"w{w}-{i}", bronze_rows(FIRST_DAY, f"w{w}-{i}", n)) for i, n in enumerate(row)]
        for w, row in enumerate(sizes)
    ]


def bronze(properties: dict[str, str]) -> Table:
    return lake.load(lake.open_catalog(CATALOG, properties), BRONZE_FLIGHTS)


def replace_source(table: Table, batch: Batch) -> int:
    """Bronze's commit: the batch replaces the rows of its source file."""
    made = Provenance("test", "writer", batch.source.removesuffix(".csv"), batch.batch_id)
    return lake.replace_rows(table, batch.rows, EqualTo("_source", batch.source), made)


Commit = Callable[[Table, Batch], int]


def write(properties: dict[str, str], plan_file: Path, commit: Commit, barrier: Any, results: Any) -> None:
    """A writer process: load its batches and the table, wait for the others, commit every batch."""
    plan: list[Batch] = pickle.loads(plan_file.read_bytes())
    table = bronze(properties)
    barrier.wait(timeout=120)
    started = time.perf_counter()
    landed, lost = {}, []
    for batch in plan:
        try:
            landed[batch.batch_id] = commit(table, batch)
        except Exception as exc:  # a lost commit: reported, not raised, so the others are counted too
            lost.append(f"{batch.batch_id}: {type(exc).__name__}: {exc}")
    results.put(Report(landed, lost, commits.COUNTS.retries, time.perf_counter() - started))


def run(properties: dict[str, str], plan: list[list[Batch]], commit: Commit = replace_source) -> Run:
    """Start one process per writer, release them together, and collect their reports.

    `commit` is pickled by reference: a function of a module the writers can import.
    """
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(len(plan)), spawn.Queue()
    with tempfile.TemporaryDirectory(prefix="lakeops-contention-") as folder:
        # Batches go by file: a start() whose arguments overflow the pipe waits for the child's imports.
        files = [Path(folder) / f"writer-{w}.pickle" for w in range(len(plan))]
        for file, batches_ in zip(files, plan, strict=True):
            file.write_bytes(pickle.dumps(batches_))
        processes = [spawn.Process(target=write, args=(properties, file, commit, barrier, results)) for file in files]
        for process in processes:
            process.start()
        reports = [_report(results, processes) for _ in processes]
    for process in processes:
        process.join()
    return Run([b for batches_ in plan for b in batches_], reports)


def _report(results: Any, processes: list[Any]) -> Report:
    while True:
        try:
            report: Report = results.get(timeout=1)
            return report
        except queue.Empty:
            crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            assert not crashed, f"a writer process crashed (exit codes {crashed}): see its traceback above"


def contents(table: Table, snapshot_id: int | None = None) -> dict[str, Counter[str]]:
    """Rows per source file and batch id, as of `snapshot_id` (current when None)."""
    rows = lake.read(table, AlwaysTrue(), snapshot_id, ("_source", "_batch_id"))
    found: dict[str, Counter[str]] = {}
    for source, batch_id in zip(rows["_source"], rows["_batch_id"], strict=True):
        found.setdefault(source, Counter())[batch_id] += 1
    return found


def history(table: Table) -> list[int]:
    """Main's snapshots, oldest first."""
    return [s.snapshot_id for s in ancestors_of(table.current_snapshot(), table.metadata)][::-1]


@contextlib.contextmanager
def fresh_lake(backend: str, root: Path) -> Iterator[dict[str, str]]:
    """Catalog properties of a new lake (tables made) on `backend`: a PostgreSQL database is made, then dropped."""
    root.mkdir(parents=True, exist_ok=True)
    warehouse = f"file://{root / 'warehouse'}"
    if backend == "sqlite":
        yield _with_tables({"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": warehouse})
        return
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432 as user postgres with trust auth: {exc}")
    admin.autocommit = True
    database = f"lakeops_contention_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database}")
    try:
        yield _with_tables({"type": "sql", "uri": f"{POSTGRES}/{database}", "warehouse": warehouse})
    finally:
        with admin.cursor() as cursor:  # FORCE: the writers' and this test's pooled connections
            cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


def _with_tables(properties: dict[str, str]) -> dict[str, str]:
    lake.ensure_tables(lake.open_catalog(CATALOG, properties), REGISTRY)
    return properties


@pytest.fixture(params=["sqlite", "postgresql"])
def properties(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_lake(request.param, tmp_path) as found:
        yield found


def test_writers_of_distinct_windows_lose_no_commit(properties):
    writers, commits_each = 4, 10

    done = run(properties, distinct_windows(writers, commits_each))

    assert done.lost == []
    assert done.retries >= writers - 1
    table = bronze(properties)
    assert contents(table) == {b.source: Counter({b.batch_id: len(b.rows)}) for b in done.batches}
    # One snapshot per commit, each holding the rows of every commit before it and its own.
    landed = {snapshot: batch for report in done.reports for batch, snapshot in report.landed.items()}
    snapshots = history(table)
    assert sorted(snapshots) == sorted(landed)
    totals = [int(table.snapshot_by_id(s).summary["total-records"]) for s in snapshots]
    assert totals == list(itertools.accumulate(done.size(landed[s]) for s in snapshots))


def test_writers_of_one_window_leave_the_last_batch_whole(properties):
    writers, commits_each = 2, 10

    done = run(properties, same_window(writers, commits_each))

    assert done.lost == []
    assert done.retries >= writers - 1
    table = bronze(properties)
    snapshots = history(table)
    assert len(snapshots) == writers * commits_each
    # At every snapshot, the window holds exactly the batch that snapshot committed, whole.
    for snapshot_id in snapshots:
        batch_id = lake.provenance_of(table.snapshot_by_id(snapshot_id)).batch_id
        assert contents(table, snapshot_id) == {SAME_SOURCE: Counter({batch_id: done.size(batch_id)})}
