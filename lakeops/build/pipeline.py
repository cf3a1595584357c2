"""The medallion steps: Bronze ingest, Silver and Gold builds. Each returns its readiness signal."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, EqualTo
from pyiceberg.table import Table

from lakeops.build import fallback
from lakeops.ingest import batches
from lakeops.iceberg import lake
from lakeops.ingest import lateness
from lakeops.iceberg import tags
from lakeops import transforms
from lakeops.datasets.names import (
    BRONZE_FLIGHTS,
    GOLD_DAILY_DELAYS,
    QUARANTINE_FLIGHTS,
    SILVER_FLIGHTS,
    TableRef,
)
from lakeops.errors import EmptyWindow, MalformedBatch, ValidationFailed
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness.ready import ReadySignal
from lakeops.build.validation import ValidationReport, Validator
from lakeops.datasets.windows import Window


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
    """What one day file did to Bronze: its window's signal, the earlier windows its late rows extended,
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


def ingest_bronze(catalog: Catalog, batch: batches.RawBatch, run: RunInfo) -> ReadySignal:
    """Land a file that holds only its own window's rows; see `land`."""
    return land(catalog, batch, run).own


def land(
    catalog: Catalog,
    batch: batches.RawBatch,
    run: RunInfo,
    policy: lateness.LatePolicy = lateness.NO_LATE_RECORDS,
    accept_additive: bool = False,
) -> Landing:
    """Parse the batch and make its rows the only Bronze rows from its file; a re-delivery commits nothing.

    Rows of earlier windows within the allowed lateness extend those windows (one commit with the
    file's own rows); rows later than that are quarantined first, by line. Raises MalformedBatch
    (nothing committed) when the file cannot be parsed or holds no row of its own window.
    """
    typed = batches.parse(batch, accept_additive=accept_additive)
    table = lake.load(catalog, BRONZE_FLIGHTS)
    observed = lateness.observed_lags(lake.read(table, AlwaysTrue(), columns=_LAG_COLUMNS)) if policy.adaptive else []
    arrival = lateness.split(typed, batch.window, policy.allowance(np.asarray(observed)))
    if arrival.own.empty:
        raise MalformedBatch(batch.source, f"no row of window {batch.window} (every row is dated earlier)")
    extended = tuple(w.key for w in arrival.late)
    # Parsing is Bronze's validation: every commit that reaches here is known good.
    provenance = Provenance(
        run.code_version, run.flow_run_id, batch.window.key, batch.batch_id, validated=True, extended_windows=extended
    )
    source = EqualTo("_source", Path(batch.source).name)
    present = lake.read(table, source, columns=("_batch_id",))
    current = table.current_snapshot()
    # Landed already: same bytes and the same rows accepted (a changed allowance lands again).
    if current is not None and set(present["_batch_id"]) == {batch.batch_id} and len(present) == len(arrival.accepted):
        snapshot_id = current.snapshot_id
    else:
        if len(arrival.too_late):
            _quarantine_too_late(catalog, batch, arrival, run)
        rows = lake.to_arrow(batches.with_lineage(arrival.accepted, batch, datetime.now(UTC)), BRONZE_FLIGHTS)
        snapshot_id = lake.replace_rows(table, rows, source, provenance)
        tags.mark_good(table, snapshot_id)
    own = lake.ready_signal(table, BRONZE_FLIGHTS, snapshot_id, provenance, len(arrival.own))
    late = tuple(_extended_signal(table, snapshot_id, provenance, window) for window in arrival.late)
    too_late = tuple(int(line) for line in arrival.too_late.index)
    return Landing(own, late, too_late, arrival.allowed_days, arrival.counts()["late"])


_LAG_COLUMNS = ("year", "month", "day", "_source")


def _extended_signal(table: Table, snapshot_id: int, provenance: Provenance, window: Window) -> ReadySignal:
    """The signal of an earlier window that late rows extended: all its rows as of the new snapshot."""
    rows = len(lake.read(table, window.source_filter(), snapshot_id, ("_batch_id",)))
    return lake.ready_signal(table, BRONZE_FLIGHTS, snapshot_id, replace(provenance, window=window.key), rows)


def _quarantine_too_late(catalog: Catalog, batch: batches.RawBatch, arrival: lateness.Arrival, run: RunInfo) -> None:
    lines = [int(line) for line in arrival.too_late.index]
    error = MalformedBatch(
        batch.source,
        f"{len(lines)} late record(s), up to {arrival.too_late_lag_days} days after their window; the contract "
        f"allows {arrival.allowed_days}",
        "day",
        lines[0],
    )
    table = lake.load(catalog, QUARANTINE_FLIGHTS)
    rows = batches.quarantine_rows(batch, error, datetime.now(UTC), only_lines=lines)
    provenance = Provenance(run.code_version, run.flow_run_id, batch.window.key, batch.batch_id)
    lake.replace_rows(table, lake.to_arrow(rows, QUARANTINE_FLIGHTS), EqualTo("batch_id", batch.batch_id), provenance)


def quarantine(catalog: Catalog, batch: batches.RawBatch, error: MalformedBatch, run: RunInfo) -> int:
    """Keep the whole raw batch and the reason in `quarantine.flights`; return the rows kept."""
    table = lake.load(catalog, QUARANTINE_FLIGHTS)
    rows = batches.quarantine_rows(batch, error, datetime.now(UTC))
    where = EqualTo("batch_id", batch.batch_id)
    provenance = Provenance(run.code_version, run.flow_run_id, batch.window.key, batch.batch_id)
    lake.replace_rows(table, lake.to_arrow(rows, QUARANTINE_FLIGHTS), where, provenance)
    return len(rows)


def build_silver(
    catalog: Catalog,
    window: Window,
    bronze_snapshot_id: int,
    run: RunInfo,
    stale: bool = False,
    version: str = transforms.CURRENT,
    *,
    target: Target = Target(),
    carry_from: Window | None = None,
) -> ReadySignal:
    """Rebuild Silver's window from Bronze exactly as of `bronze_snapshot_id`.

    With `carry_from` (a stale fallback when the window's own data is late), the rows of that
    earlier window are carried forward into `window`, re-dated, and the commit is marked stale.
    Raises ValidationFailed (nothing committed) when `target.validate` rejects the output.
    """
    if carry_from is not None and not stale:
        raise ValueError("carrying a window forward is a stale fallback: pass stale=True")
    source = carry_from or window
    bronze = lake.load(catalog, BRONZE_FLIGHTS)
    rows = _non_empty(lake.read(bronze, source.source_filter(), bronze_snapshot_id), BRONZE_FLIGHTS, source)
    silver = transforms.flights(version).to_silver(rows).assign(_bronze_snapshot_id=bronze_snapshot_id)
    if carry_from is not None:
        silver = fallback.carry_forward(silver, carry_from, window)
    return _publish_window(
        catalog,
        SILVER_FLIGHTS,
        silver,
        window,
        run,
        stale,
        version,
        target,
        inputs={BRONZE_FLIGHTS.identifier: bronze_snapshot_id},
        batch_id=str(rows["_batch_id"].iloc[0]),
        carried_from=carry_from,
    )


def build_gold(
    catalog: Catalog,
    window: Window,
    silver_snapshot_id: int,
    run: RunInfo,
    stale: bool = False,
    version: str = transforms.CURRENT,
    *,
    target: Target = Target(),
) -> ReadySignal:
    """Rebuild Gold's window from Silver exactly as of `silver_snapshot_id` (which may be on a branch)."""
    silver = lake.load(catalog, SILVER_FLIGHTS)
    rows = _non_empty(lake.read(silver, window.date_filter(), silver_snapshot_id), SILVER_FLIGHTS, window)
    # A window extended by late records derives from several batches: Gold names them all.
    batch_id = ",".join(sorted(set(rows["_batch_id"].astype(str))))
    gold = transforms.flights(version).to_gold(rows).assign(_batch_id=batch_id)
    return _publish_window(
        catalog,
        GOLD_DAILY_DELAYS,
        gold,
        window,
        run,
        stale,
        version,
        target,
        inputs={SILVER_FLIGHTS.identifier: silver_snapshot_id},
        batch_id=batch_id,
    )


def _publish_window(
    catalog: Catalog,
    ref: TableRef,
    frame: pd.DataFrame,
    window: Window,
    run: RunInfo,
    stale: bool,
    version: str,
    target: Target,
    inputs: dict[str, int],
    batch_id: str,
    carried_from: Window | None = None,
) -> ReadySignal:
    """Validate, commit the window on the target branch, and move last-known-good when earned."""
    report = target.validate(ref, frame) if target.validate else None
    if report is not None and not report.success:
        raise ValidationFailed(
            f"{ref} window {window} failed {len(report.failures)} of {report.evaluated} checks of "
            f"{report.suite}; nothing committed: " + "; ".join(report.failures),
            report.failures,
        )
    table = lake.load(catalog, ref)
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
    snapshot_id = lake.replace_rows(table, lake.to_arrow(frame, ref), window.date_filter(), provenance)
    if provenance.validated and not stale and target.branch == lake.MAIN:
        tags.mark_good(table, snapshot_id)
    return lake.ready_signal(table, ref, snapshot_id, provenance, len(frame))


def certify(catalog: Catalog, ref: TableRef, signal: ReadySignal, validate: Validator) -> ValidationReport:
    """Audit a committed window after its signal went out; a pass on a fresh commit moves last-known-good.

    The audit runs after publishing so that consumers do not wait for it (great_expectations alone
    takes seconds to import). Raises ValidationFailed: the window stays committed, last-known-good
    stays where it was, and the run fails for a human to look at.
    """
    table = lake.load(catalog, ref)
    report = validate(ref, lake.read(table, Window.parse(signal.window).date_filter(), signal.snapshot_id))
    if not report.success:
        good = tags.last_known_good(table)
        raise ValidationFailed(
            f"{ref} window {signal.window} at snapshot {signal.snapshot_id} failed {len(report.failures)} of "
            f"{report.evaluated} checks of {report.suite}; last-known-good stays at "
            f"{good.snapshot_id if good else 'none'}: " + "; ".join(report.failures),
            report.failures,
        )
    if not signal.stale:
        tags.mark_good(table, signal.snapshot_id)
    return report


def _non_empty(rows: pd.DataFrame, ref: TableRef, window: Window) -> pd.DataFrame:
    if rows.empty:
        raise EmptyWindow(f"{ref} has no rows for window {window} in the requested snapshot")
    return rows
