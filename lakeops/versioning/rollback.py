"""Rollback: point a table's main branch at an earlier snapshot in one commit, after a safety check.

The check: each window in the target was built from a Bronze batch (`_batch_id` on every row). If
Bronze now holds a different batch for that window (a correction, a late-data reprocess), rolling
back would republish data built from input known to be superseded; the rollback is refused
unless forced.
"""

from dataclasses import dataclass
from datetime import date

import pandas as pd
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from lakeops.datasets.names import BRONZE_FLIGHTS, TableRef
from lakeops.errors import UnsafeRollback
from lakeops.iceberg import lake
from lakeops.versioning import timetravel


@dataclass(frozen=True)
class CorrectedWindow:
    window: str
    built_from_batch: str
    bronze_batch_now: str | None


@dataclass(frozen=True)
class RollbackCheck:
    """What rolling back to `target` would republish that Bronze has since corrected."""

    table: str
    target: Snapshot
    corrected: tuple[CorrectedWindow, ...]

    @property
    def safe(self) -> bool:
        return not self.corrected

    def warning(self) -> str:
        lines = [
            f"{w.window}: built from batch {w.built_from_batch}, Bronze now holds {w.bronze_batch_now or 'no rows'}"
            for w in self.corrected
        ]
        return (
            f"rolling {self.table} back to snapshot {self.target.snapshot_id} would republish "
            f"{len(lines)} window(s) built from Bronze input that has since been corrected:\n  " + "\n  ".join(lines)
        )


@dataclass(frozen=True)
class RollbackResult:
    table: str
    previous_snapshot_id: int | None
    snapshot_id: int
    check: RollbackCheck


def check(catalog: Catalog, ref: TableRef, target: Snapshot) -> RollbackCheck:
    """Compare the batch each window of `target` was built from with the batch Bronze holds now."""
    table = lake.load(catalog, ref)
    built = _batches(table, target.snapshot_id, ref)
    bronze = lake.load(catalog, BRONZE_FLIGHTS)
    head = bronze.current_snapshot()
    now = _batches(bronze, head.snapshot_id, BRONZE_FLIGHTS) if head else {}
    corrected = tuple(
        CorrectedWindow(window, batch, now.get(window))
        for window, batch in sorted(built.items())
        if now.get(window) != batch
    )
    return RollbackCheck(str(ref), target, corrected)


def rollback(catalog: Catalog, ref: TableRef, to: timetravel.AsOf, force: bool = False) -> RollbackResult:
    """Make `to` the table's current snapshot in one atomic commit.

    Raises SnapshotNotFound / RefNotFound when the target does not exist (or was expired), and
    UnsafeRollback when the check finds corrected input and `force` is False.
    """
    table = lake.load(catalog, ref)
    target = timetravel.resolve(table, to)
    verdict = check(catalog, ref, target)
    if not verdict.safe and not force:
        raise UnsafeRollback(verdict.warning() + "\nrerun with --force to roll back anyway")
    previous = table.current_snapshot()
    table.manage_snapshots().set_current_snapshot(snapshot_id=target.snapshot_id).commit()
    return RollbackResult(str(ref), previous.snapshot_id if previous else None, target.snapshot_id, verdict)


def _batches(table: Table, snapshot_id: int, ref: TableRef) -> dict[str, str]:
    """Window -> the batch ids its rows carry (comma-joined, sorted), as of `snapshot_id`."""
    if ref == BRONZE_FLIGHTS:
        rows = lake.read(table, AlwaysTrue(), snapshot_id, ("year", "month", "day", "_batch_id"))
        days = [
            date(int(y), int(m), int(d)).isoformat() for y, m, d in zip(rows.year, rows.month, rows.day, strict=True)
        ]
        rows = pd.DataFrame({"window": days, "_batch_id": rows["_batch_id"]})
    else:
        rows = lake.read(table, AlwaysTrue(), snapshot_id, ("flight_date", "_batch_id"))
        rows = pd.DataFrame({"window": rows["flight_date"].astype(str), "_batch_id": rows["_batch_id"]})
    # A window holds its own file's batch and the batches that brought it late records.
    batches = rows.dropna().groupby("window")["_batch_id"].agg(lambda ids: ",".join(sorted(set(ids))))
    return batches.to_dict()
