"""Blue-green releases: pin the input, build both colours on branches, compare them, decide.

Blue is the transform version consumers read now, green the candidate. Both read the same pinned
Bronze snapshots (the ones the published Silver rows record) and write Silver then Gold to their
own branches (`release-<id>-blue`, `release-<id>-green`) of the real tables, forked from main at
the moment the release was pinned: consumers reading main see neither. The comparison runs
cheapest first, window by window (one window of each colour in memory): fingerprints (identical
windows stop there), then a keyed diff, then a suite on green built from blue's statistics.
Promotion and rollback are in `lakeops.release.promotion`, catching up with windows main gained
meanwhile in `lakeops.release.catch_up`.
"""

import functools
import operator
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lakeops.build import pipeline
from lakeops.build.validation import ValidationReport, suite_frame
from lakeops.datasets.declaration import Layer
from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.release import release_log
from lakeops.release.comparison import Comparison, Suite, TableComparison, Thresholds
from lakeops.release.diff import KeyedDiff, keyed_diff, merged
from lakeops.release.fingerprint import RowSum, row_sum
from lakeops.versioning import replay

BLUE, GREEN = "blue", "green"
BUILD_OPERATION = "release-build"


@dataclass(frozen=True)
class ReleasePlan:
    """What a release pinned: versions, the Bronze snapshot of each window, each table's main head."""

    release_id: str
    dataset: str
    blue_version: str
    green_version: str
    sources: tuple[replay.WindowSource, ...]
    base: dict[str, int]
    layers: tuple[str, ...]  # qualified names of the layers switched, in switch order
    tables: tuple[TableRef, ...]  # their tables, in the same order

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(s.window for s in self.sources)

    @property
    def pinned(self) -> dict[str, dict[str, int]]:
        """Window -> the input snapshots both colours read, by qualified input name."""
        return {s.window.key: dict(s.inputs) for s in self.sources}

    def branch(self, colour: str) -> str:
        return f"release-{self.release_id}-{colour}"

    def version(self, colour: str) -> str:
        return self.blue_version if colour == BLUE else self.green_version

    def entry(self, event: release_log.Event, **fields: Any) -> release_log.Entry:
        """A log entry about this release; `fields` are further fields of the Entry."""
        return release_log.Entry(
            self.release_id,
            self.dataset,
            event,
            release_log.now(),
            blue_version=self.blue_version,
            green_version=self.green_version,
            windows=self.pinned,
            base=self.base,
            **fields,
        )


def new_id(now: datetime) -> str:
    return f"r{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:4]}"


def plan(
    catalog: Catalog,
    registry: Registry,
    dataset: str,
    green_version: str,
    blue_version: str | None = None,
    start: date | None = None,
    end: date | None = None,
    release_id: str | None = None,
) -> ReleasePlan:
    """Pin the input of a release: windows of the first switched table's main in [start, end] and their inputs.

    Blue defaults to the live release's version (or the dataset's default version). Raises
    ValueError for an unknown dataset or version, equal versions, or an empty range.
    """
    declared = registry.dataset(dataset)
    layers = replay.replayed_layers(declared)
    if not declared.release:
        raise ValueError(f"dataset {dataset} declares no release scope")
    blue = blue_version or release_log.live_version(catalog, dataset) or declared.default_version
    for version in (blue, green_version):
        for name in layers:
            registry.layer(name).transform(version)
    if blue == green_version:
        raise ValueError(f"green and blue are the same transform version {blue!r}: nothing to release")
    tables = tuple(registry.layer(name).table for name in layers)
    # Downstream first: each table is then at least as new as what the commits of the next one read,
    # and the windows pinned are read from the very snapshot recorded as the first table's base.
    loaded = {ref: lake.load(catalog, ref) for ref in reversed(tables)}
    first = registry.layer(layers[0])
    recorded = replay.recorded_sources(registry, first, loaded[first.table])
    chosen = sorted(w for w in recorded if (not start or w.day >= start) and (not end or w.day <= end))
    if not chosen:
        raise ValueError(f"{first.table} main holds no window in [{start or '...'}, {end or '...'}] to release")
    base = {}
    for ref in tables:
        head = lake.head(loaded[ref])
        if head is None:
            raise ValueError(f"{ref} has no commit yet: nothing to release")
        base[ref.identifier] = head.snapshot_id
    sources = tuple(replay.WindowSource(w, recorded[w], True) for w in chosen)
    rid = release_id or new_id(release_log.now())
    return ReleasePlan(rid, dataset, blue, green_version, sources, base, layers, tables)


def fork(catalog: Catalog, release: ReleasePlan) -> None:
    """Create both colours' branches at each table's pinned main head (a rerun keeps existing ones)."""
    for ref in release.tables:
        table = lake.load(catalog, ref)
        for colour in (BLUE, GREEN):
            if lake.head(table, release.branch(colour)) is None:
                table.manage_snapshots().create_branch(release.base[ref.identifier], release.branch(colour)).commit()


def build(
    catalog: Catalog, registry: Registry, release: ReleasePlan, colour: str, run: pipeline.RunInfo
) -> replay.ReplayResult:
    """Build every window of one colour on its branch from the pinned input (resumable)."""
    return replay.run(catalog, registry, replay_plan(release, colour), run, operation=BUILD_OPERATION)


def replay_plan(release: ReleasePlan, colour: str) -> replay.ReplayPlan:
    """One colour's build as a replay of the pinned windows into its branch (an orchestrator fans it out)."""
    version, branch = release.version(colour), release.branch(colour)
    return replay.ReplayPlan(release.dataset, version, branch, release.layers, release.sources)


def compare(
    catalog: Catalog,
    registry: Registry,
    release: ReleasePlan,
    thresholds: Thresholds,
    suite: Suite | None,
    windows: Sequence[Window] | None = None,
) -> Comparison:
    """Compare the colours table by table over `windows` (default: the release's), cheapest check first."""
    layers = [registry.layer(name) for name in release.layers]
    chosen = tuple(release.windows if windows is None else windows)
    if not chosen:
        raise ValueError(f"release {release.release_id}: no window to compare")
    tables = tuple(_compare_table(catalog, layer, release, chosen, thresholds, suite) for layer in layers)
    return Comparison(tables, chosen)


def _compare_table(
    catalog: Catalog,
    layer: Layer,
    release: ReleasePlan,
    windows: tuple[Window, ...],
    thresholds: Thresholds,
    suite: Suite | None,
) -> TableComparison:
    """The colours of one table compared window by window: one window of each in memory at a time.

    A window whose fingerprints are equal goes no further; a window that differs gets a keyed diff (a row
    is matched within its window) and the suite, parameterised with blue's window. The table's
    fingerprints, diff and suite report add up from its windows'.
    """
    ref = layer.table
    table = lake.load(catalog, ref)
    heads = {}
    for colour in (BLUE, GREEN):
        head = lake.head(table, release.branch(colour))
        if head is None:
            raise ValueError(f"{ref} has no branch {release.branch(colour)}: build the colours first")
        heads[colour] = head.snapshot_id
    sums: dict[str, list[RowSum]] = {BLUE: [], GREEN: []}
    diffs: list[KeyedDiff] = []
    reports: list[tuple[Window, ValidationReport]] = []
    identical_rows = 0
    for window in windows:
        where = layer.window.filter_any([window])
        blue, green = (table.scan(row_filter=where, snapshot_id=heads[c]).to_arrow() for c in (BLUE, GREEN))
        sums[BLUE].append(row_sum(blue))
        sums[GREEN].append(row_sum(green))
        if sums[BLUE][-1] == sums[GREEN][-1]:
            identical_rows += blue.num_rows
            continue
        tolerance = _known(thresholds.column_tolerance, blue)
        diffs.append(
            keyed_diff(blue, green, layer.key, tolerance=tolerance, float_tolerance=thresholds.float_tolerance)
        )
        if suite:
            reports.append((window, suite(layer, suite_frame(blue), suite_frame(green), thresholds)))
    blue_print, green_print = (functools.reduce(operator.add, sums[c]).fingerprint() for c in (BLUE, GREEN))
    if not diffs:
        return TableComparison(str(ref), heads[BLUE], heads[GREEN], blue_print, green_print, None, None, ())
    diff = merged(diffs, identical_rows)
    breaches = thresholds.breaches(diff)
    report = _suite_report(reports) if suite else None
    if report and not report.success:
        breaches += tuple(f"suite: {failure}" for failure in report.failures)
    return TableComparison(str(ref), heads[BLUE], heads[GREEN], blue_print, green_print, diff, report, breaches)


def _suite_report(reports: list[tuple[Window, ValidationReport]]) -> ValidationReport:
    """The windows' suite reports as one: the rows and expectations they evaluated, each failure by window."""
    failures = tuple(f"{window}: {failure}" for window, report in reports for failure in report.failures)
    name = reports[0][1].suite if reports else "release suite"
    return ValidationReport(name, sum(r.rows for _, r in reports), sum(r.evaluated for _, r in reports), failures)


def _known(tolerance: dict[str, float], rows: pa.Table) -> dict[str, float]:
    """Per-column tolerances that apply to this table (a release's thresholds name columns of all its tables)."""
    return {column: value for column, value in tolerance.items() if column in rows.column_names}


def drop_branches(catalog: Catalog, release: ReleasePlan) -> None:
    """Remove both colours' branches; what they held stays reachable by snapshot id until expired."""
    for ref in release.tables:
        table = lake.load(catalog, ref)
        for colour in (BLUE, GREEN):
            if release.branch(colour) in table.metadata.refs:
                table.manage_snapshots().remove_branch(release.branch(colour)).commit()
