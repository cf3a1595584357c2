"""`lakeops history TABLE`: every retained snapshot with the provenance its commit recorded."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from pyiceberg.table import Table

from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance


@dataclass(frozen=True)
class HistoryEntry:
    """One snapshot: when, what operation, how many rows, which refs point at it, what made it."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    rows: int
    refs: tuple[str, ...]
    made_by: Provenance | None

    @property
    def current(self) -> bool:
        return lake.MAIN in self.refs


def history(table: Table, limit: int | None = None) -> list[HistoryEntry]:
    """Retained snapshots, newest first (branches and tags included)."""
    refs: dict[int, list[str]] = defaultdict(list)
    for name, ref in table.metadata.refs.items():
        refs[ref.snapshot_id].append(name)
    entries = []
    for snapshot in sorted(table.snapshots(), key=lake.sequence_number, reverse=True)[:limit]:
        summary = snapshot.summary
        props = summary.additional_properties if summary else {}
        entries.append(
            HistoryEntry(
                snapshot_id=snapshot.snapshot_id,
                parent_id=snapshot.parent_snapshot_id,
                committed_at=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
                operation=summary.operation.value if summary else "?",
                rows=int(props.get("total-records", 0)),
                refs=tuple(sorted(refs.get(snapshot.snapshot_id, []))),
                made_by=lake.provenance_of(snapshot),
            )
        )
    return entries


def render(entries: list[HistoryEntry]) -> str:
    """An aligned text table, one snapshot per line."""
    out = [
        f"{'snapshot':>20} {'committed (UTC)':<19} {'op':<9} {'rows':>7} {'window':<10} {'kind':<10} "
        f"{'transform':<9} {'stale':<5} {'code':<16} {'flow run':<36} inputs  refs"
    ]
    for e in entries:
        p = e.made_by
        inputs = ",".join(f"{t}@{s}" for t, s in p.inputs.items()) if p else ""
        out.append(
            f"{e.snapshot_id:>20} {e.committed_at:%Y-%m-%d %H:%M:%S} {e.operation:<9} {e.rows:>7} "
            f"{(p.window if p else '-'):<10} {(p.operation if p else '-'):<10} "
            f"{((p.transform_version or '-') if p else '-'):<9} {('yes' if p and p.stale else 'no'):<5} "
            f"{(p.code_version if p else '-')[:16]:<16} {(p.flow_run_id if p else '-'):<36} "
            f"{inputs or '-'}  {','.join(e.refs)}"
        )
    return "\n".join(out)
