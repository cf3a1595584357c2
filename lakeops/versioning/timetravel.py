"""Time travel: read a table as of a snapshot id, a point in time or a tag (or branch)."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from lakeops.errors import RefNotFound, SnapshotNotFound
from lakeops.iceberg import lake


@dataclass(frozen=True)
class AsOf:
    """Which version of a table to read: at most one of snapshot id, time, or ref; none means current."""

    snapshot_id: int | None = None
    time: datetime | None = None
    ref: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.snapshot_id, self.time, self.ref) if v is not None]
        if len(given) > 1:
            raise ValueError("give one of snapshot id, time or tag, not several")
        if self.time is not None and self.time.tzinfo is None:
            object.__setattr__(self, "time", self.time.replace(tzinfo=UTC))

    @classmethod
    def parse_time(cls, text: str) -> "AsOf":
        """An ISO 8601 instant such as 2026-11-20T06:00Z; a time without an offset is taken as UTC."""
        try:
            return cls(time=datetime.fromisoformat(text))
        except ValueError:
            raise ValueError(f"--as-of must be an ISO 8601 time like 2026-11-20T06:00Z, got {text!r}") from None

    def __str__(self) -> str:
        if self.snapshot_id is not None:
            return f"snapshot {self.snapshot_id}"
        if self.time is not None:
            return f"as of {self.time.isoformat()}"
        return f"ref {self.ref}" if self.ref else "current"


def resolve(table: Table, as_of: AsOf) -> Snapshot:
    """The snapshot `as_of` names; raises SnapshotNotFound / RefNotFound for an impossible request."""
    name = ".".join(table.name())
    if as_of.snapshot_id is not None:
        snapshot = table.snapshot_by_id(as_of.snapshot_id)
        if snapshot is None:
            raise SnapshotNotFound(f"{name} has no snapshot {as_of.snapshot_id} (never existed, or expired)")
        return snapshot
    if as_of.ref is not None:
        snapshot = table.snapshot_by_name(as_of.ref)
        if snapshot is None:
            known = ", ".join(sorted(table.metadata.refs)) or "none"
            raise RefNotFound(f"{name} has no tag or branch {as_of.ref!r} (known: {known})")
        return snapshot
    if as_of.time is not None:
        return _as_of_time(table, name, as_of.time)
    current = table.current_snapshot()
    if current is None:
        raise SnapshotNotFound(f"{name} has no snapshot yet: nothing has been committed")
    return current


def _as_of_time(table: Table, name: str, time: datetime) -> Snapshot:
    """The snapshot current at `time`, from main's history log.

    pyiceberg's expiry drops only the expired entries from the log, so the entry before a gap would
    wrongly answer for the expired state; a gap shows as a new commit whose parent is not the entry
    before it, and a time inside a gap is refused.
    """
    at_ms = int(time.timestamp() * 1000)
    log = table.history()
    earlier = [i for i, entry in enumerate(log) if entry.timestamp_ms <= at_ms]
    if not earlier:
        if not log:
            raise SnapshotNotFound(f"{name} has no snapshot at or before {time.isoformat()}: nothing committed yet")
        raise SnapshotNotFound(
            f"{name} has no snapshot at or before {time.isoformat()}: its oldest retained snapshot is from "
            f"{_iso(log[0].timestamp_ms)} (the table did not exist yet, or older snapshots expired)"
        )
    index = earlier[-1]
    if index + 1 < len(log):
        following = table.snapshot_by_id(log[index + 1].snapshot_id)
        new_commit = following is not None and following.timestamp_ms == log[index + 1].timestamp_ms
        if following is not None and new_commit and following.parent_snapshot_id != log[index].snapshot_id:
            raise SnapshotNotFound(
                f"{name} as of {time.isoformat()} is gone: snapshots committed between "
                f"{_iso(log[index].timestamp_ms)} and {_iso(log[index + 1].timestamp_ms)} were expired"
            )
    snapshot = table.snapshot_by_id(log[index].snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(f"{name} as of {time.isoformat()}: snapshot {log[index].snapshot_id} was expired")
    return snapshot


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="seconds")


def read_as_of(
    table: Table, as_of: AsOf, row_filter: BooleanExpression | None = None, columns: tuple[str, ...] = ("*",)
) -> tuple[Snapshot, pd.DataFrame]:
    """The resolved snapshot and the rows matching `row_filter` (all rows when None) in it."""
    snapshot = resolve(table, as_of)
    return snapshot, lake.read(table, row_filter or AlwaysTrue(), snapshot.snapshot_id, columns)
