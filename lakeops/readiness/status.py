"""`lakeops status`: each table's current snapshot, row count and last readiness signal."""

from dataclasses import dataclass

from pyiceberg.catalog import Catalog

from lakeops.datasets.names import TableRef
from lakeops.errors import TableNotFound
from lakeops.iceberg import lake
from lakeops.readiness import markers
from lakeops.readiness.ready import ReadySignal


@dataclass(frozen=True)
class TableStatus:
    """One line of `lakeops status`."""

    table: str
    snapshot_id: int | None
    rows: int
    last_signal: ReadySignal | None


def status(catalog: Catalog, refs: tuple[TableRef, ...]) -> list[TableStatus]:
    """Current snapshot, row count and last readiness signal of each table that exists."""
    lines = []
    for ref in refs:
        try:
            table = lake.load(catalog, ref)
        except TableNotFound:
            continue
        current = table.current_snapshot()
        rows = int(current.summary["total-records"] or 0) if current and current.summary else 0
        lines.append(
            TableStatus(ref.identifier, current.snapshot_id if current else None, rows, markers.read_marker(table))
        )
    return lines


def render(lines: list[TableStatus]) -> str:
    """The status as an aligned text table."""
    out = [f"{'table':<22} {'snapshot':>20} {'rows':>8}  last readiness signal"]
    for line in lines:
        signal = line.last_signal
        told = (
            f"{signal.window} snapshot {signal.snapshot_id} at {signal.committed_at:%Y-%m-%d %H:%M:%S}"
            f"{' STALE' if signal.stale else ''}"
            if signal
            else "-"
        )
        out.append(f"{line.table:<22} {line.snapshot_id or '-':>20} {line.rows:>8}  {told}")
    return "\n".join(out)
