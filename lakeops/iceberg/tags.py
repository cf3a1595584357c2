"""Named refs on tables: the last-known-good tag, moved forward only, and tag look-ups."""

from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Snapshot

from lakeops.healing.failures import COMMIT_CONFLICT, is_commit_conflict, retrying
from lakeops.iceberg.lake import sequence_number
from lakeops.iceberg.transactions import manage_snapshots

LAST_KNOWN_GOOD = "last-known-good"


def tags(table: Table) -> dict[str, int]:
    """Tag name -> snapshot id."""
    return {
        name: ref.snapshot_id
        for name, ref in table.metadata.refs.items()
        if ref.snapshot_ref_type == SnapshotRefType.TAG
    }


def last_known_good(table: Table) -> Snapshot | None:
    """The snapshot tagged last-known-good, or None when no commit has passed validation yet."""
    return table.snapshot_by_name(LAST_KNOWN_GOOD)


def mark_good(table: Table, snapshot_id: int) -> bool:
    """Move last-known-good to `snapshot_id` unless it already points at a newer snapshot.

    Ref commits are compare-and-swap; a lost race is retried on fresh metadata. Returns True when moved.
    """
    what = f"moving {LAST_KNOWN_GOOD} of {'.'.join(table.name())}"
    return retrying(lambda: _move_good(table, snapshot_id), COMMIT_CONFLICT, retry_if=is_commit_conflict, what=what)


def _move_good(table: Table, snapshot_id: int) -> bool:
    table.refresh()
    target = table.snapshot_by_id(snapshot_id)
    if target is None:
        raise ValueError(f"table {'.'.join(table.name())} has no snapshot {snapshot_id}")
    current = last_known_good(table)
    if current is not None and sequence_number(current) >= sequence_number(target):
        return False
    manage_snapshots(table).create_tag(snapshot_id, LAST_KNOWN_GOOD).commit()
    return True
