"""Markers: the readiness signal of a committed window, and the files beside a table that carry it.

For readers that are not Prefect: `<table location>/_ready/<window>.json` per window and `_READY`
naming the latest signal, written after the commit and before the event.
"""

from datetime import UTC, datetime

from pyiceberg.table import Table

from lakeops.datasets.names import TableRef
from lakeops.errors import SnapshotNotFound
from lakeops.iceberg.lake import schema_fingerprint
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness.ready import ReadySignal, marker_paths


def signal_of(table: Table, ref: TableRef, snapshot_id: int, provenance: Provenance, row_count: int) -> ReadySignal:
    """The readiness signal describing a committed window."""
    snapshot = table.snapshot_by_id(snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(f"table {ref} has no snapshot {snapshot_id}")
    return ReadySignal(
        dataset=ref.identifier,
        snapshot_id=snapshot_id,
        window=provenance.window,
        row_count=row_count,
        schema_fingerprint=schema_fingerprint(table),
        code_version=provenance.code_version,
        stale=provenance.stale,
        committed_at=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
    )


def write_marker(table: Table, signal: ReadySignal) -> str:
    """Write the window's marker file and the table's `_READY` file; return the window's path."""
    window_path, latest_path = marker_paths(table.location(), signal.window)
    body = signal.to_json().encode()
    for path in (window_path, latest_path):
        with table.io.new_output(path).create(overwrite=True) as out:
            out.write(body)
    return window_path


def read_marker(table: Table, window: str | None = None) -> ReadySignal | None:
    """The signal in a window's marker (the latest one when window is None); None if absent."""
    window_path, latest_path = marker_paths(table.location(), window or "")
    source = table.io.new_input(window_path if window else latest_path)
    if not source.exists():
        return None
    with source.open() as handle:
        return ReadySignal.from_json(handle.read().decode())
