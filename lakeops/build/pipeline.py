"""The layer steps of any dataset: land a source file in Bronze, quarantine it, build a layer's window.

Each step returns the readiness signal of what it committed.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table

from lakeops.build import fallback
from lakeops.build.validation import Validator
from lakeops.datasets.declaration import Dataset, LatePolicy, Layer
from lakeops.datasets.filters import equal_to
from lakeops.datasets.registry import Registry, bronze_of
from lakeops.datasets.windows import Window, WindowColumn
from lakeops.errors import EmptyWindow, MalformedBatch, ValidationFailed
from lakeops.iceberg import lake, schemas, tags
from lakeops.iceberg.provenance import Provenance
from lakeops.ingest import batches, lateness
from lakeops.readiness import markers
from lakeops.readiness.ready import ReadySignal


@dataclass(frozen=True)
class Target:
    """Where and how a build commits: the branch, the operation recorded, the suite that gates it."""

    branch: str = lake.MAIN
    operation: str = "build"
    validate: Validator | None = None


@dataclass(frozen=True)
class RunInfo:
    """Who is running: the orchestrator's run id and the code version."""

    flow_run_id: str
    code_version: str


@dataclass(frozen=True)
class Landing:
    """What one source file did to Bronze: its window's signal, the earlier windows its late rows extended,
    and how many rows were too late (quarantined)."""

    own: ReadySignal
    extended: tuple[ReadySignal, ...]
    too_late_lines: tuple[int, ...]
    allowed_days: int
    late_rows: int = 0

    @property
    def too_late(self) -> int:
        return len(self.too_late_lines)

    @property
    def signals(self) -> tuple[ReadySignal, ...]:
        return (self.own, *self.extended)


def land(
    catalog: Catalog,
    dataset: Dataset,
    batch: batches.RawBatch,
    run: RunInfo,
    policy: LatePolicy | None = None,
    accept_additive: bool | None = None,
) -> Landing:
    """Parse the batch and make its rows the only Bronze rows from its file; a re-delivery commits nothing.

    Rows of earlier windows within the allowed lateness (default: the source's) extend those windows
    (one commit with the file's own rows); rows later than that are quarantined first, by line.
    Raises MalformedBatch (nothing committed) when the file cannot be parsed or holds no row of its
    own window.
    """
    bronze = bronze_of(dataset)
    source = dataset.source
    assert source is not None
    policy = policy or source.lateness
    typed = batches.typed_rows(batch, source, accept_additive=accept_additive)
    table = lake.load(catalog, bronze.table)
    observed = _observed_lags(table, source.event_time) if policy.adaptive else np.array([], dtype="int64")
    events = typed.events(source.event_time)
    arrival = lateness.split(events, batch.window, lateness.allowance(policy, observed), source.event_time)
    if arrival.own.empty:
        raise MalformedBatch(batch.source, f"no row of window {batch.window} (every row is dated earlier)")
    extended = tuple(w.key for w in arrival.late)
    # Parsing is Bronze's validation: every commit that reaches here is known good.
    provenance = Provenance(
        run.code_version,
        run.flow_run_id,
        batch.window.key,
        batch.batch_id,
        validated=True,
        extended_windows=extended,
    )
    from_file = equal_to("_source", Path(batch.source).name)
    present = lake.read_arrow(table, from_file, columns=("_batch_id",))["_batch_id"]
    current = table.current_snapshot()
    # Landed already: same bytes and the same rows accepted (a changed allowance lands again).
    accepted = arrival.accepted.index
    if current is not None and pc.unique(present).to_pylist() == [batch.batch_id] and len(present) == len(accepted):
        snapshot_id = current.snapshot_id
    else:
        if len(arrival.too_late):
            _quarantine_too_late(catalog, dataset, batch, arrival, run)
        rows = lake.conform(batches.lineage(typed.take(accepted), batch, datetime.now(UTC)), bronze.schema)
        del typed, events
        snapshot_id = lake.replace_rows(table, rows, from_file, provenance, tag=tags.LAST_KNOWN_GOOD)
    own = markers.signal_of(table, bronze.table, snapshot_id, provenance, len(arrival.own))
    late = tuple(_extended_signal(table, bronze, snapshot_id, provenance, window) for window in arrival.late)
    too_late = tuple(int(line) for line in arrival.too_late.index)
    return Landing(own, late, too_late, arrival.allowed_days, arrival.counts()["late"])


def _observed_lags(table: Table, event_time: WindowColumn) -> np.ndarray:
    rows = lake.read(table, AlwaysTrue(), columns=lateness.lag_columns(event_time))
    return lateness.observed_lags(rows, event_time)


def _extended_signal(
    table: Table, bronze: Layer, snapshot_id: int, provenance: Provenance, window: Window
) -> ReadySignal:
    """The signal of an earlier window that late rows extended: all its rows as of the new snapshot."""
    rows = len(lake.read(table, bronze.window.filter(window), snapshot_id, ("_batch_id",)))
    return markers.signal_of(table, bronze.table, snapshot_id, replace(provenance, window=window.key), rows)


def _quarantine_too_late(
    catalog: Catalog, dataset: Dataset, batch: batches.RawBatch, arrival: lateness.Arrival, run: RunInfo
) -> None:
    lines = [int(line) for line in arrival.too_late.index]
    error = MalformedBatch(
        batch.source,
        f"{len(lines)} late record(s), up to {arrival.too_late_lag_days} days after their window; the contract "
        f"allows {arrival.allowed_days}",
        arrival.event_time.columns[-1],
        lines[0],
    )
    _keep(catalog, dataset, batch, batches.quarantine_rows(batch, error, datetime.now(UTC), only_lines=lines), run)


def quarantine(catalog: Catalog, dataset: Dataset, batch: batches.RawBatch, error: MalformedBatch, run: RunInfo) -> int:
    """Keep the whole raw batch and the reason in the dataset's quarantine table; return the rows kept."""
    rows = batches.quarantine_rows(batch, error, datetime.now(UTC))
    _keep(catalog, dataset, batch, rows, run)
    return len(rows)


def _keep(catalog: Catalog, dataset: Dataset, batch: batches.RawBatch, rows: pd.DataFrame, run: RunInfo) -> None:
    assert dataset.quarantine is not None, "only a dataset with a source quarantines"
    table = lake.load(catalog, dataset.quarantine)
    provenance = Provenance(run.code_version, run.flow_run_id, batch.window.key, batch.batch_id)
    arrow = lake.to_arrow(rows, schemas.QUARANTINE)
    lake.replace_rows(table, arrow, equal_to("batch_id", batch.batch_id), provenance)


def build(
    catalog: Catalog,
    registry: Registry,
    layer: str,
    window: Window,
    inputs: Mapping[str, int],
    run: RunInfo,
    stale: bool = False,
    version: str | None = None,
    *,
    target: Target = Target(),
    carry_from: Window | None = None,
) -> ReadySignal:
    """Rebuild a layer's window from its inputs, each read exactly as of the snapshot `inputs` names.

    `layer` and the keys of `inputs` are qualified layer names (orders.silver, orders.bronze). With
    `carry_from` (a stale fallback when the window's own data is late), the rows of that earlier
    window are read and carried forward into `window`, re-dated, and the commit is marked stale.
    Raises ValidationFailed (nothing committed) when `target.validate` rejects the output.
    """
    if carry_from is not None and not stale:
        raise ValueError("carrying a window forward is a stale fallback: pass stale=True")
    dataset = registry.dataset(layer.partition(".")[0])
    output = registry.layer(layer)
    if missing := [name for name in output.inputs if name not in inputs]:
        raise ValueError(f"{output.table} reads {list(output.inputs)}: no snapshot given for {missing}")
    version = version or dataset.default_version
    source = carry_from or window
    tables = [_input_rows(catalog, registry.layer(name), source, inputs[name]) for name in output.inputs]
    batch_ids = sorted(set().union(*(_batches(rows) for rows in tables)))
    built = output.transform(version)(*tables)
    del tables  # one window's data at a time: the inputs are let go before the commit
    if output.lineage:
        built = _with_constant(built, output.lineage, pa.scalar(inputs[output.inputs[0]], pa.int64()))
    if "_batch_id" in output.schema.names and "_batch_id" not in built.column_names:
        # A window extended by late records derives from several batches: the output names them all.
        built = _with_constant(built, "_batch_id", pa.scalar(",".join(batch_ids), pa.string()))
    rows = lake.conform(built, output.schema)
    if carry_from is not None:
        parts = dataset.source.event_time.parts if dataset.source else ()
        moved = fallback.carry_forward(rows.to_pandas(), output.schema, parts, carry_from, window)
        rows = lake.to_arrow(moved, output.schema)
    return _publish_window(
        catalog,
        output,
        rows,
        window,
        run,
        stale,
        version,
        target,
        inputs={str(registry.layer(name).table): inputs[name] for name in output.inputs},
        batch_id=",".join(batch_ids),
        carried_from=carry_from,
    )


def _input_rows(catalog: Catalog, layer: Layer, window: Window, snapshot_id: int) -> pa.Table:
    rows = lake.read_arrow(lake.load(catalog, layer.table), layer.window.filter(window), snapshot_id)
    if not len(rows):
        raise EmptyWindow(f"{layer.table} has no rows for window {window} in snapshot {snapshot_id}")
    return rows


def _batches(rows: pa.Table) -> set[str]:
    if "_batch_id" not in rows.column_names:
        return set()
    joined = pc.unique(rows["_batch_id"].drop_null()).to_pylist()
    return {b for value in joined for b in str(value).split(",")}


def _with_constant(rows: pa.Table, name: str, value: pa.Scalar) -> pa.Table:
    """`rows` with column `name` set to `value` on every row (replaced where the transform wrote it)."""
    column = pa.repeat(value, len(rows))
    if name in rows.column_names:
        return rows.set_column(rows.column_names.index(name), name, column)
    return rows.append_column(name, column)


def _publish_window(
    catalog: Catalog,
    layer: Layer,
    rows: pa.Table,
    window: Window,
    run: RunInfo,
    stale: bool,
    version: str,
    target: Target,
    inputs: dict[str, int],
    batch_id: str,
    carried_from: Window | None = None,
) -> ReadySignal:
    """Audit, then commit the window on the target branch, and move last-known-good when earned.

    Write-audit-publish: the suite runs on exactly the rows about to be committed (cast to the table's
    schema and read back as any reader of the table gets them), before anything is committed; a
    window that fails is never committed, so never seen on the branch nor signalled.
    """
    table = lake.load(catalog, layer.table)
    report = target.validate(layer, rows) if target.validate else None
    if report is not None and not report.success:
        good = tags.last_known_good(table)
        head = lake.head(table, target.branch)
        raise ValidationFailed(
            f"{layer.table} window {window} failed {len(report.failures)} of {report.evaluated} checks of "
            f"{report.suite}; nothing committed: {target.branch} stays at {head.snapshot_id if head else 'none'}, "
            f"last-known-good at {good.snapshot_id if good else 'none'}: " + "; ".join(report.failures),
            report.failures,
        )
    provenance = Provenance(
        run.code_version,
        run.flow_run_id,
        window.key,
        batch_id,
        inputs,
        stale,
        version,
        operation=target.operation,
        branch=target.branch,
        validated=report is not None,
        carried_from=carried_from.key if carried_from else None,
    )
    # A commit that earns last-known-good moves it in the same compare-and-swap (the newest snapshot: forward).
    earned = provenance.validated and not stale and target.branch == lake.MAIN
    tag = tags.LAST_KNOWN_GOOD if earned else None
    snapshot_id = lake.replace_rows(table, rows, layer.window.filter(window), provenance, tag=tag)
    return markers.signal_of(table, layer.table, snapshot_id, provenance, len(rows))
