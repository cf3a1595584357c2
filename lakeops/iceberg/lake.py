"""pyiceberg access: the catalog, table creation, reads at a snapshot, commits with provenance."""

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime

import pandas as pd
import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from lakeops.datasets.names import (
    BRONZE_FLIGHTS,
    GOLD_DAILY_DELAYS,
    NAMESPACES,
    QUARANTINE_FLIGHTS,
    RELEASES,
    SILVER_FLIGHTS,
    SLA_FACTS,
    TableRef,
)
from lakeops.errors import SnapshotNotFound, TableNotFound
from lakeops.healing.failures import COMMIT_CONFLICT, is_commit_conflict, retrying
from lakeops.iceberg import schemas
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness.ready import ReadySignal, marker_paths
from lakeops.settings import LakeSettings

TABLE_SCHEMAS: dict[TableRef, pa.Schema] = {
    BRONZE_FLIGHTS: schemas.BRONZE,
    SILVER_FLIGHTS: schemas.SILVER,
    GOLD_DAILY_DELAYS: schemas.GOLD_DAILY_DELAYS,
    QUARANTINE_FLIGHTS: schemas.QUARANTINE,
    SLA_FACTS: schemas.SLA_FACTS,
    RELEASES: schemas.RELEASES,
}


def open_catalog(name: str, properties: Mapping[str, str]) -> Catalog:
    """A pyiceberg catalog from its properties (`type`, `uri`, `warehouse`, ...)."""
    return load_catalog(name, **dict(properties))


def embedded_properties(settings: LakeSettings) -> dict[str, str]:
    """Catalog properties for the embedded default: a SQL catalog and a local warehouse."""
    settings.resolved_home().mkdir(parents=True, exist_ok=True)
    return {
        "type": "sql",
        "uri": settings.resolved_catalog_uri(),
        "warehouse": settings.resolved_warehouse(),
    }


# Old metadata files are deleted on commit: snapshots (what time travel needs) live in the current one.
TABLE_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
MAIN = "main"


def ensure_tables(catalog: Catalog) -> None:
    """Create missing namespaces and tables, add missing columns; safe to run concurrently and twice."""
    for namespace in NAMESPACES:
        try:
            catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
    for ref, schema in TABLE_SCHEMAS.items():
        if not catalog.table_exists(ref.identifier):
            try:
                _create_table(catalog, ref, schema)
                continue
            except (TableAlreadyExistsError, CommitFailedException):
                if not catalog.table_exists(ref.identifier):
                    raise
        _add_missing_columns(catalog.load_table(ref.identifier), schema)


def _create_table(catalog: Catalog, ref: TableRef, schema: pa.Schema) -> None:
    with catalog.create_table_transaction(ref.identifier, schema=schema, properties=TABLE_PROPERTIES) as tx:
        partition_columns = schemas.PARTITION_COLUMNS.get(ref.identifier, ())
        if partition_columns:
            with tx.update_spec() as spec:
                for column in partition_columns:
                    spec.add_identity(column)


def _add_missing_columns(table: Table, schema: pa.Schema) -> None:
    """Additive evolution only: a table made by an older lakeops gains the new columns (nullable)."""
    missing = [field for field in schema if field.name not in table.schema().column_names]
    if missing:
        with table.update_schema() as update:
            update.union_by_name(pa.schema([field.with_nullable(True) for field in missing]))


def load(catalog: Catalog, ref: TableRef) -> Table:
    """Load a table; raises TableNotFound with the table's name."""
    try:
        return catalog.load_table(ref.identifier)
    except NoSuchTableError as exc:
        raise TableNotFound(f"table {ref} does not exist in catalog {catalog.name}") from exc


def to_arrow(frame: pd.DataFrame, ref: TableRef) -> pa.Table:
    """Cast a frame to the table's declared Arrow schema (column order and types)."""
    schema = TABLE_SCHEMAS[ref]
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def read(
    table: Table,
    row_filter: BooleanExpression,
    snapshot_id: int | None = None,
    columns: tuple[str, ...] = ("*",),
) -> pd.DataFrame:
    """Rows matching `row_filter` as of `snapshot_id` (current when None)."""
    if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        raise SnapshotNotFound(f"table {'.'.join(table.name())} has no snapshot {snapshot_id}")
    scan = table.scan(row_filter=row_filter, snapshot_id=snapshot_id, selected_fields=columns)
    return scan.to_pandas()


def replace_rows(table: Table, rows: pa.Table, where: BooleanExpression, provenance: Provenance) -> int:
    """Atomically replace the rows matching `where` on `provenance.branch`; return the new head's id."""
    with warnings.catch_warnings():
        # The first write of a window has nothing to delete; pyiceberg warns about it.
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        _with_commit_retries(
            table,
            lambda: table.overwrite(
                rows, overwrite_filter=where, snapshot_properties=provenance.to_properties(), branch=provenance.branch
            ),
        )
    snapshot = head(table, provenance.branch)
    assert snapshot is not None, "a commit always leaves a head"
    return snapshot.snapshot_id


def _with_commit_retries(table: Table, commit: Callable[[], object]) -> None:
    """Run `commit`, retrying on fresh metadata when a concurrent commit to another branch won the race.

    pyiceberg retries CommitFailedException itself; the SQL catalog reports one race (two writers
    on different branches taking the same sequence number) as a ValueError, which it does not retry.
    """
    retrying(
        commit,
        COMMIT_CONFLICT,
        retry_if=lambda exc: isinstance(exc, ValueError) and is_commit_conflict(exc),
        on_retry=lambda _: table.refresh(),
        what=f"commit to {'.'.join(table.name())}",
    )


def head(table: Table, branch: str = MAIN) -> Snapshot | None:
    """The newest snapshot of `branch`, or None when the branch does not exist (or has no commit)."""
    return table.current_snapshot() if branch == MAIN else table.snapshot_by_name(branch)


def append_rows(table: Table, rows: pa.Table, provenance: Provenance) -> int:
    """Append `rows` in one commit; return the new snapshot id."""
    table.append(rows, snapshot_properties=provenance.to_properties())
    snapshot = table.current_snapshot()
    assert snapshot is not None, "a commit always leaves a current snapshot"
    return snapshot.snapshot_id


def windows_in(table: Table, snapshot_id: int | None = None) -> set[date]:
    """The days a table holds rows for, as of `snapshot_id` (current when None)."""
    if table.current_snapshot() is None:
        return set()
    if "flight_date" in table.schema().column_names:
        return set(read(table, AlwaysTrue(), snapshot_id, ("flight_date",))["flight_date"].unique())
    days = read(table, AlwaysTrue(), snapshot_id, ("year", "month", "day")).drop_duplicates()
    return {date(int(y), int(m), int(d)) for y, m, d in days.itertuples(index=False)}


def schema_fingerprint(table: Table) -> str:
    """A short hash of the table's column names, types and nullability."""
    fields = [(f.name, str(f.field_type), f.required) for f in table.schema().fields]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


def ready_signal(table: Table, ref: TableRef, snapshot_id: int, provenance: Provenance, row_count: int) -> ReadySignal:
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


def provenance_of(snapshot: Snapshot) -> Provenance | None:
    """The provenance recorded in a snapshot's summary, or None."""
    return Provenance.from_properties(snapshot.summary.additional_properties if snapshot.summary else {})


def snapshot_of_run(table: Table, flow_run_id: str) -> Snapshot | None:
    """The newest snapshot committed by the given flow run, or None."""
    for snapshot in sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True):
        made_by = provenance_of(snapshot)
        if made_by and made_by.flow_run_id == flow_run_id:
            return snapshot
    return None
