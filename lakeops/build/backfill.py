"""Backfill: each landed window of a dataset through every layer it builds, windows side by side.

A window's chain is sequential: its file lands in Bronze, then each built layer of the dataset is
built from the snapshot the layer before it just committed (the commit order of one window). Windows
are independent: they touch disjoint rows, so any number of chains may run at once, and a commit that
loses its compare-and-swap to another window's is planned again and lands (`commits`). A chain run
again (a retried task, a backfill started twice) replaces its window's rows in place and a landed
file lands once: every window ends built exactly once, whatever ran twice.

The orchestrator decides how chains run (one after the other, or fanned out on a task runner);
this module is the work of one window.
"""

import contextlib
import ctypes
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lakeops.build import pipeline
from lakeops.build.validation import Validator
from lakeops.datasets.declaration import Dataset
from lakeops.datasets.registry import Registry, bronze_of
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SnapshotNotFound
from lakeops.healing.failures import FailureClass, classify
from lakeops.iceberg import lake
from lakeops.ingest import batches
from lakeops.readiness import markers
from lakeops.readiness.ready import ReadySignal

TASKS_PER_WORKER = 8


@dataclass(frozen=True)
class Chain:
    """What one window's chain committed: each layer's signal in build order, and the windows its late
    records extended (built again after every chain ran)."""

    window: str
    signals: tuple[ReadySignal, ...]
    extended: tuple[str, ...]
    seconds: float

    @property
    def rows(self) -> int:
        """Rows landed in Bronze for the window."""
        return self.signals[0].row_count


@dataclass(frozen=True)
class Failed:
    """A window whose chain failed for a reason no retry mends (a malformed file, a failed suite)."""

    window: str
    reason: str


def run_windows(
    catalog: Catalog,
    registry: Registry,
    dataset: str,
    landing: Path,
    windows: list[Window],
    run: pipeline.RunInfo,
    version: str,
    validate: Validator | None = None,
) -> list[Chain | Failed]:
    """Each window's chain in turn, one window's data at a time: what one task of a backfill runs.

    A window that fails for a reason a retry does not mend (a malformed file, quarantined whole; a failed
    suite; an unknown error) is reported and the next one runs. A transient failure or a resource one is
    raised: the caller's retry runs the windows again, each replacing its rows in place, a landed file
    landing once.
    """
    done: list[Chain | Failed] = []
    for window in windows:
        try:
            done.append(run_window(catalog, registry, dataset, landing, window, run, version, validate))
        except MalformedBatch as error:
            source = registry.dataset(dataset).source
            assert source is not None
            batch = batches.read_landed(landing, source, window)
            kept = pipeline.quarantine(catalog, registry.dataset(dataset), batch, error, run)
            done.append(Failed(window.key, f"quarantined {kept} rows of batch {batch.batch_id}: {error}"))
        except Exception as error:
            if classify(error) in (FailureClass.TRANSIENT, FailureClass.RESOURCE):
                raise
            done.append(Failed(window.key, str(error).splitlines()[0] if str(error) else type(error).__name__))
    return done


def in_tasks(windows: list[Window], workers: int, per_worker: int = TASKS_PER_WORKER) -> list[list[Window]]:
    """`windows` (the first one measured alone: see `largest_first`) cut into runs of consecutive windows,
    about `per_worker` tasks per worker: a task costs the orchestrator a task run (states, a worker's
    hand-off), about 0.1 s each measured, which 84 windows paid one by one."""
    if not windows:
        return []
    first, rest = windows[0], windows[1:]
    size = max(1, math.ceil(len(rest) / (per_worker * max(1, workers))))
    return [[first], *(rest[i : i + size] for i in range(0, len(rest), size))]


def landed_windows(landing: Path, dataset: Dataset, start: str | None = None, end: str | None = None) -> list[Window]:
    """The windows whose file the source has landed, oldest first, within [start, end] when given."""
    source = dataset.source
    if source is None:
        raise ValueError(f"dataset {dataset.name} has no source to backfill from")
    grain = bronze_of(dataset).window.grain
    head, tail = source.path.split("{window}")
    where, _, prefix = head.rpartition("/")  # the window is named in the file's name
    folder = landing / where
    pattern = re.compile(re.escape(prefix) + "(.+)" + re.escape(tail) + "$")
    found = sorted(
        Window.parse(m.group(1), grain) for p in folder.glob("*") if p.is_file() and (m := pattern.match(p.name))
    )
    low = Window.parse(start, grain) if start else None
    high = Window.parse(end, grain) if end else None
    return [w for w in found if (low is None or w >= low) and (high is None or w <= high)]


def largest_first(landing: Path, dataset: Dataset, windows: list[Window]) -> list[Window]:
    """`windows` with the one whose landed file is the largest first, the rest in order: the first window a
    run builds is the one it sizes its workers' memory on (a first month of data is often a partial one)."""
    source = dataset.source
    if source is None or not windows:
        return list(windows)
    largest = max(windows, key=lambda w: (landing / source.file(w.key)).stat().st_size)
    return [largest, *(w for w in windows if w != largest)]


def build_order(dataset: Dataset) -> tuple[str, ...]:
    """The dataset's built layers, each after the built layers of its own dataset it reads (qualified names)."""
    pending = [f"{dataset.name}.{x.name}" for x in dataset.layers if x.built]
    built, done = set(pending), list[str]()
    while pending:
        ready = [n for n in pending if all(i in done or i not in built for i in _inputs(dataset, n))]
        if not ready:
            raise ValueError(f"dataset {dataset.name}: its layers read each other in a cycle: {pending}")
        done += ready
        pending = [n for n in pending if n not in ready]
    return tuple(done)


def _inputs(dataset: Dataset, qualified: str) -> tuple[str, ...]:
    return dataset.layer(qualified.split(".", 1)[1]).inputs


def run_window(
    catalog: Catalog,
    registry: Registry,
    dataset: str,
    landing: Path,
    window: Window,
    run: pipeline.RunInfo,
    version: str,
    validate: Validator | None = None,
) -> Chain:
    """Land the window's file, then build each layer of the dataset for it; markers written for each commit.

    Raises MalformedBatch (after nothing was committed) for a file that cannot land: the caller
    quarantines it, as ingest does.
    """
    started = time.monotonic()
    declared = registry.dataset(dataset)
    source = declared.source
    assert source is not None
    landed = pipeline.land(catalog, declared, batches.read_landed(landing, source, window), run)
    _mark(catalog, registry, f"{dataset}.bronze", landed.own)
    signals = [
        landed.own,
        *build_layers(catalog, registry, dataset, window, landed.own.snapshot_id, run, version, validate),
    ]
    extended = tuple(s.window for s in landed.extended)
    release_memory()
    return Chain(window.key, tuple(signals), extended, time.monotonic() - started)


def release_memory() -> None:
    """The window's freed buffers back to the system before the next window: Arrow's pool's, and the C heap's
    (glibc keeps freed pages of DuckDB's and Parquet's allocations; about 120 MB after a SF10 month)."""
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def build_layers(
    catalog: Catalog,
    registry: Registry,
    dataset: str,
    window: Window,
    bronze_snapshot: int | None,
    run: pipeline.RunInfo,
    version: str,
    validate: Validator | None = None,
) -> list[ReadySignal]:
    """Build each layer of the dataset for `window` in build order, from the snapshots just committed.

    An input of another dataset (or Bronze when `bronze_snapshot` is None) is read at its current head.
    """
    declared = registry.dataset(dataset)
    snapshots: dict[str, int] = {} if bronze_snapshot is None else {f"{dataset}.bronze": bronze_snapshot}
    signals = []
    for name in build_order(declared):
        layer = registry.layer(name)
        inputs = {i: snapshots[i] if i in snapshots else _head(catalog, registry, i) for i in layer.inputs}
        target = pipeline.Target(validate=validate if layer.suite is not None else None)
        signal = pipeline.build(catalog, registry, name, window, inputs, run, version=version, target=target)
        _mark(catalog, registry, name, signal)
        snapshots[name] = signal.snapshot_id
        signals.append(signal)
    return signals


def _head(catalog: Catalog, registry: Registry, name: str) -> int:
    ref = registry.layer(name).table
    head = lake.load(catalog, ref).current_snapshot()
    if head is None:
        raise SnapshotNotFound(f"{ref} has no snapshot to build from")
    return head.snapshot_id


def _mark(catalog: Catalog, registry: Registry, name: str, signal: ReadySignal) -> None:
    """The readiness signal on storage (marker files): a consumer that polls markers sees the window."""
    markers.write_marker(lake.load(catalog, registry.layer(name).table), signal)
