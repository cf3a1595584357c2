"""Rollback: point a table's main branch at an earlier snapshot in one commit, after a safety check.

The check: each window in the target was built from a Bronze batch (`_batch_id` on every row). If
Bronze now holds a different batch for that window (a correction, a late-data reprocess), rolling
back would republish data built from input known to be superseded; the rollback is refused
unless forced.
"""

from dataclasses import dataclass

import pandas as pd
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from lakeops.datasets.declaration import Layer
from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
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


def check(catalog: Catalog, registry: Registry, ref: TableRef, target: Snapshot) -> RollbackCheck:
    """Compare the batches each window of `target` was built from with the batches its Bronze sources hold now."""
    _, layer = registry.by_table(ref)
    built = _batches(lake.load(catalog, ref), target.snapshot_id, layer)
    now: dict[str, set[str]] = {}
    for name in registry.sources_of(registry.qualified(layer)):
        bronze = registry.layer(name)
        table = lake.load(catalog, bronze.table)
        head = table.current_snapshot()
        for window, ids in (_batches(table, head.snapshot_id, bronze) if head else {}).items():
            now.setdefault(window, set()).update(ids.split(","))
    now_joined = {window: ",".join(sorted(ids)) for window, ids in now.items()}
    corrected = tuple(
        CorrectedWindow(window, batch, now_joined.get(window))
        for window, batch in sorted(built.items())
        if now_joined.get(window) != batch
    )
    return RollbackCheck(str(ref), target, corrected)


def rollback(
    catalog: Catalog, registry: Registry, ref: TableRef, to: timetravel.AsOf, force: bool = False
) -> RollbackResult:
    """Make `to` the table's current snapshot in one atomic commit.

    Raises SnapshotNotFound / RefNotFound when the target does not exist (or was expired), and
    UnsafeRollback when the check finds corrected input and `force` is False.
    """
    table = lake.load(catalog, ref)
    target = timetravel.resolve(table, to)
    verdict = check(catalog, registry, ref, target)
    if not verdict.safe and not force:
        raise UnsafeRollback(verdict.warning() + "\nrerun with --force to roll back anyway")
    previous = table.current_snapshot()
    table.manage_snapshots().set_current_snapshot(snapshot_id=target.snapshot_id).commit()
    return RollbackResult(str(ref), previous.snapshot_id if previous else None, target.snapshot_id, verdict)


def _batches(table: Table, snapshot_id: int, layer: Layer) -> dict[str, str]:
    """Window -> the batch ids its rows carry (comma-joined, sorted), as of `snapshot_id`."""
    rows = lake.read(table, AlwaysTrue(), snapshot_id, (*layer.window.columns, "_batch_id"))
    keys = [w.key for w in layer.window.windows(rows)] if len(rows) else []
    rows = pd.DataFrame({"window": keys, "_batch_id": rows["_batch_id"]})
    # A window holds its own file's batch and the batches that brought it late records.
    batches = (
        rows.dropna()
        .groupby("window")["_batch_id"]
        .agg(lambda ids: ",".join(sorted({b for joined in ids for b in joined.split(",")})))
    )
    by_window: dict[str, str] = batches.to_dict()
    return by_window
