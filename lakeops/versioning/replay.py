"""Replay: re-run a dataset's transform version over a window range into a branch, from recorded inputs.

Each window is rebuilt from exactly the input snapshots its published output was made of (a layer's
lineage column, such as Silver's `_bronze_snapshot_id`, or its commit's provenance), not "latest".
Output goes to a branch of every replayed table (`replay-<version>` unless named); what consumers
read (main) does not move. Every window's commit is recorded in the branch's snapshot summaries, so
a rerun after a crash skips what is already there.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from lakeops.build import pipeline
from lakeops.build.validation import Validator
from lakeops.datasets.declaration import Dataset, Layer
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Grain, Window
from lakeops.errors import SnapshotNotFound
from lakeops.iceberg import lake, tags

OPERATION = "replay"


@dataclass(frozen=True)
class WindowSource:
    """The input snapshots a window is rebuilt from (layers outside the replayed ones, by qualified name).

    `recorded` is False when the first replayed layer never built the window (inputs at their heads).
    """

    window: Window
    inputs: Mapping[str, int]
    recorded: bool

    @property
    def key(self) -> str:
        """The pinned inputs as one comparable string (what a release records per window)."""
        return ",".join(f"{name}@{snapshot}" for name, snapshot in sorted(self.inputs.items()))


@dataclass(frozen=True)
class ReplayPlan:
    dataset: str
    version: str
    branch: str
    layers: tuple[str, ...]  # qualified names, in build order
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
    heads: Mapping[str, int | None]  # table -> the branch head after the replay
    rows: int


def branch_name(version: str) -> str:
    return f"replay-{version}"


def replayed_layers(dataset: Dataset) -> tuple[str, ...]:
    """What a replay or a release of a dataset rebuilds: its release scope, else every built layer."""
    names = dataset.release or tuple(x.name for x in dataset.layers if x.built)
    return tuple(f"{dataset.name}.{n}" for n in names)


def external_inputs(registry: Registry, layers: tuple[str, ...]) -> tuple[str, ...]:
    """Inputs of the replayed layers that they do not build themselves: these are pinned per window."""
    found: list[str] = []
    for name in layers:
        found += [i for i in registry.layer(name).inputs if i not in layers and i not in found]
    return tuple(found)


def plan(
    catalog: Catalog,
    registry: Registry,
    dataset: str,
    version: str,
    start: date | None = None,
    end: date | None = None,
    branch: str | None = None,
) -> ReplayPlan:
    """Windows in [start, end] with the input snapshots their published output was built from.

    `start` defaults to the window of the first replayed layer's last-known-good snapshot ("from the
    last known good state forward"), or to the first window when nothing has been validated yet.
    """
    declared = registry.dataset(dataset)
    layers = replayed_layers(declared)
    if not layers:
        raise ValueError(f"dataset {dataset} has no built layer to replay")
    for name in layers:
        registry.layer(name).transform(version)  # an unknown version fails here, before any work
    if start and end and start > end:
        raise ValueError(f"replay range is empty: start {start} is after end {end}")
    first = registry.layer(layers[0])
    output = lake.load(catalog, first.table)
    recorded = recorded_sources(registry, first, output)
    outside = external_inputs(registry, layers)
    heads = {name: lake.load(catalog, registry.layer(name).table) for name in outside}
    windows = set(recorded)
    for name, table in heads.items():
        windows |= lake.windows_in(table, registry.layer(name).window)
    # A date names its day's window, or the month window it falls in.
    grain: Grain = "month" if first.window.grain == "month" else "day"
    low = Window.parse(start, grain) if start else _last_known_good_window(output, first)
    high = Window.parse(end, grain) if end else None
    chosen = sorted(w for w in windows if (low is None or w.day >= low.day) and (high is None or w.day <= high.day))
    sources = []
    for window in chosen:
        pinned = dict(recorded.get(window) or {})
        for name, table in heads.items():
            if name not in pinned:
                head = table.current_snapshot()
                if head is None:
                    raise SnapshotNotFound(f"{registry.layer(name).table} has no snapshot for window {window}")
                pinned[name] = head.snapshot_id
        for name, snapshot_id in pinned.items():
            if heads[name].snapshot_by_id(snapshot_id) is None:
                ref = registry.layer(name).table
                raise SnapshotNotFound(f"{ref} snapshot {snapshot_id} recorded for {window} no longer exists")
        sources.append(WindowSource(window, pinned, window in recorded))
    return ReplayPlan(dataset, version, branch or branch_name(version), layers, tuple(sources))


def recorded_sources(registry: Registry, layer: Layer, table: Table) -> dict[Window, dict[str, int]]:
    """Window -> the input snapshots its published rows were built from, by qualified input name.

    Read from the layer's lineage column where it declares one (it survives snapshot expiry),
    else from the provenance of the newest commit of each window on main.
    """
    if table.current_snapshot() is None:
        return {}
    if layer.lineage:
        rows = lake.read(table, AlwaysTrue(), columns=(*layer.window.columns, layer.lineage)).dropna()
        rows = rows.assign(_window=layer.window.windows(rows)).drop_duplicates("_window")
        return {w: {layer.inputs[0]: int(s)} for w, s in zip(rows["_window"], rows[layer.lineage], strict=True)}
    by_table = {str(registry.layer(name).table): name for name in layer.inputs}
    found: dict[Window, dict[str, int]] = {}
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        made = lake.provenance_of(snapshot)
        if made is None or not made.window or not made.inputs:
            continue
        window = Window.parse(made.window, layer.window.grain)
        found.setdefault(window, {by_table[t]: s for t, s in made.inputs.items() if t in by_table})
    present = lake.windows_in(table, layer.window)
    return {w: inputs for w, inputs in found.items() if w in present}


@dataclass(frozen=True)
class Replayed:
    """One window of a replay: built (False: every layer was on the branch already) and the rows it read."""

    window: Window
    built: bool
    rows: int


def prepare(catalog: Catalog, registry: Registry, replay: ReplayPlan) -> None:
    """Fork the replay's branch of each replayed table (kept when it exists: a rerun resumes on it)."""
    for name in replay.layers:
        _ensure_branch(lake.load(catalog, registry.layer(name).table), replay.branch)


def run_window(
    catalog: Catalog,
    registry: Registry,
    replay: ReplayPlan,
    source: WindowSource,
    run_info: pipeline.RunInfo,
    validate: Validator | None = None,
    operation: str = OPERATION,
) -> Replayed:
    """Rebuild one planned window, layer by layer, on the branch; a layer already there is skipped.

    Windows are independent (disjoint rows; a lost compare-and-swap is planned again), so any number
    may run at once once `prepare` forked the branches.
    """
    target = pipeline.Target(branch=replay.branch, operation=operation, validate=validate)
    window, snapshots, built, rows = source.window, dict(source.inputs), False, 0
    for name in replay.layers:
        layer = registry.layer(name)
        table = lake.load(catalog, layer.table)
        wanted = {i: snapshots[i] for i in layer.inputs}
        there = completed(table, replay.branch, replay.version, operation, layer.window.grain).get(window)
        if there is not None and there[1] == {str(registry.layer(i).table): s for i, s in wanted.items()}:
            snapshots[name] = there[0]
            continue
        signal = pipeline.build(
            catalog, registry, name, window, wanted, run_info, version=replay.version, target=target
        )
        # Rows are counted where the replay reads its input: the first layer's (Silver's) rows.
        rows += signal.row_count if name == replay.layers[0] else 0
        snapshots[name], built = signal.snapshot_id, True
    return Replayed(window, built, rows)


def result(catalog: Catalog, registry: Registry, replay: ReplayPlan, windows: list[Replayed]) -> ReplayResult:
    """What the replay left on its branch, from each window's outcome."""
    heads = {}
    for name in replay.layers:
        head = lake.head(lake.load(catalog, registry.layer(name).table), replay.branch)
        heads[str(registry.layer(name).table)] = head.snapshot_id if head else None
    replayed = tuple(w.window for w in windows if w.built)
    skipped = tuple(w.window for w in windows if not w.built)
    return ReplayResult(replay.version, replay.branch, replayed, skipped, heads, sum(w.rows for w in windows))


def run(
    catalog: Catalog,
    registry: Registry,
    replay: ReplayPlan,
    run_info: pipeline.RunInfo,
    validate: Validator | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    operation: str = OPERATION,
) -> ReplayResult:
    """Rebuild each planned window in turn on the branch; windows already there are skipped.

    `operation` is recorded in each commit's provenance (a release builds its colours as `release-build`).
    An orchestrator that fans windows out calls `prepare`, `run_window` per window and `result` itself.
    """
    prepare(catalog, registry, replay)
    outcomes: list[Replayed] = []
    rows, started = 0, time.monotonic()
    for count, source in enumerate(replay.sources, start=1):
        outcome = run_window(catalog, registry, replay, source, run_info, validate, operation)
        outcomes.append(outcome)
        rows += outcome.rows
        if on_progress:
            elapsed = time.monotonic() - started
            on_progress(Progress(source.window, count, len(replay.sources), not outcome.built, rows, elapsed))
    return result(catalog, registry, replay, outcomes)


def completed(
    table: Table, branch: str, version: str, operation: str = OPERATION, grain: Grain = "day"
) -> dict[Window, tuple[int, dict[str, int]]]:
    """Window -> (snapshot id, inputs by table) of the newest `operation` commit of `version` on `branch`."""
    found: dict[Window, tuple[int, dict[str, int]]] = {}
    head = lake.head(table, branch)
    for snapshot in ancestors_of(head, table.metadata) if head else ():
        made = lake.provenance_of(snapshot)
        if not made or made.operation != operation or made.branch != branch or made.transform_version != version:
            continue
        window = Window.parse(made.window, "hour" if "T" in made.window else grain)
        found.setdefault(window, (snapshot.snapshot_id, dict(made.inputs)))
    return found


def _ensure_branch(table: Table, branch: str) -> None:
    """Fork `branch` from main's current snapshot unless it exists (a rerun resumes on it)."""
    current = table.current_snapshot()
    if lake.head(table, branch) is None and current is not None:
        table.manage_snapshots().create_branch(current.snapshot_id, branch).commit()


def _last_known_good_window(table: Table, layer: Layer) -> Window | None:
    good = tags.last_known_good(table)
    made = lake.provenance_of(good) if good else None
    return Window.parse(made.window, layer.window.grain) if made and made.window else None
