"""Named refs on tables: the last-known-good tag and tag look-ups.

A commit that earns last-known-good moves it in the same commit (`lake.replace_rows(..., tag=)`): one
compare-and-swap for the snapshot and the tag, so the tag only ever moves to the newest snapshot
(forward), and a tag moved meanwhile by anyone else is a lost race, planned again on fresh metadata.
"""

from pyiceberg.table import Table
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Snapshot

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
