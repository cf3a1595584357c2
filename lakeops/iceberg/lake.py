"""pyiceberg access: the catalog, table creation, reads at a snapshot, commits with provenance."""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, BooleanExpression
from pyiceberg.table import Table
from pyiceberg.table.snapshots import INITIAL_SEQUENCE_NUMBER, Snapshot

from lakeops.datasets.names import (
    OPS,
    QUARANTINE,
    RELEASES,
    SLA_FACTS,
    TableRef,
)
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window, WindowColumn
from lakeops.errors import SnapshotNotFound, TableNotFound
from lakeops.healing.failures import COMMIT_CONFLICT, is_commit_conflict, retrying
from lakeops.iceberg import commits, schemas
from lakeops.iceberg.provenance import Provenance
from lakeops.settings import LakeSettings


@dataclass(frozen=True)
class TableSpec:
    """A table as lakeops creates it: its schema and its identity partition columns (one partition per window)."""

    ref: TableRef
    schema: pa.Schema
    partition: tuple[str, ...] = ()


def table_specs(registry: Registry) -> dict[TableRef, TableSpec]:
    """Every table of the platform: each layer's, each source's quarantine, and the ops tables."""
    specs = [TableSpec(layer.table, layer.schema, layer.partition) for _, layer in registry.layers()]
    specs += [TableSpec(d.quarantine, schemas.QUARANTINE) for d in registry.datasets if d.quarantine is not None]
    specs += [TableSpec(SLA_FACTS, schemas.SLA_FACTS), TableSpec(RELEASES, schemas.RELEASES)]
    specs += [TableSpec(ref, schema, partition) for ref, schema, partition in schemas.METRICS_TABLES]
    return {spec.ref: spec for spec in specs}


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
# An append merges the table's small manifests once there are four (Iceberg's merge-append): otherwise
# each commit adds a manifest that every later scan plan opens (an 84-month TPC-H backfill in one process:
# 61.3 s, 50.2 s merged; planning its reads and commits 16.5 s, 5.9 s).
TABLE_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
    "commit.manifest-merge.enabled": "true",
    "commit.manifest.min-count-to-merge": "4",
}
MAIN = "main"


def ensure_tables(catalog: Catalog, registry: Registry) -> None:
    """Create missing namespaces and tables, add missing columns; safe to run concurrently and twice."""
    specs = table_specs(registry)
    for namespace in sorted({ref.namespace for ref in specs} | {OPS, QUARANTINE}):
        try:
            catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
    for ref, spec in specs.items():
        if not catalog.table_exists(ref.identifier):
            try:
                _create_table(catalog, spec)
                continue
            except (TableAlreadyExistsError, CommitFailedException):
                if not catalog.table_exists(ref.identifier):
                    raise
        table = catalog.load_table(ref.identifier)
        _add_missing_columns(table, spec.schema)
        _add_missing_properties(table)


def _create_table(catalog: Catalog, spec: TableSpec) -> None:
    with catalog.create_table_transaction(spec.ref.identifier, schema=spec.schema, properties=TABLE_PROPERTIES) as tx:
        if spec.partition:
            with tx.update_spec() as update:
                for column in spec.partition:
                    update.add_identity(column)


def _add_missing_properties(table: Table) -> None:
    """A table made by an older lakeops gains the properties it lacks; one set by its owner is kept.
    A commit that lands meanwhile (a run writing the table) is a lost race: read again and retried."""

    def add() -> None:
        table.refresh()
        if missing := {k: v for k, v in TABLE_PROPERTIES.items() if k not in table.properties}:
            with table.transaction() as tx:
                tx.set_properties(missing)

    if any(k not in table.properties for k in TABLE_PROPERTIES):
        name = ".".join(table.name())
        retrying(add, COMMIT_CONFLICT, retry_if=is_commit_conflict, what=f"setting the properties of {name}")


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


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """Cast a frame to a table's declared Arrow schema (column order and types)."""
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def read(
    table: Table,
    row_filter: BooleanExpression,
    snapshot_id: int | None = None,
    columns: tuple[str, ...] = ("*",),
) -> pd.DataFrame:
    """Rows matching `row_filter` as of `snapshot_id` (current when None), as a pandas frame."""
    return read_arrow(table, row_filter, snapshot_id, columns).to_pandas()


def read_arrow(
    table: Table,
    row_filter: BooleanExpression,
    snapshot_id: int | None = None,
    columns: tuple[str, ...] = ("*",),
) -> pa.Table:
    """Rows matching `row_filter` as of `snapshot_id` (current when None), as Arrow: no detour through pandas."""
    if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
        raise SnapshotNotFound(f"table {'.'.join(table.name())} has no snapshot {snapshot_id}")
    return table.scan(row_filter=row_filter, snapshot_id=snapshot_id, selected_fields=columns).to_arrow()


def conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """An Arrow table cast to a table's declared schema (column order and types); a missing column is named."""
    if missing := [name for name in schema.names if name not in rows.column_names]:
        raise ValueError(f"rows lack the columns {missing} of the table's schema")
    return rows.select(schema.names).cast(schema)


def replace_rows(
    table: Table, rows: pa.Table, where: BooleanExpression, provenance: Provenance, tag: str | None = None
) -> int:
    """Replace the rows matching `where` on `provenance.branch` by `rows` in ONE snapshot; return its id.

    One commit is one snapshot (OVERWRITE, or APPEND when nothing matched), so time travel never
    lands between a delete and its append. A commit that loses to a concurrent writer is planned
    again on fresh metadata and retried: no commit is lost. Writers of the same rows: the one that
    commits last wins, its batch replaces the window whole (never a mix of batches, never both).
    With `tag`, that tag points at the new snapshot in the same commit.
    """
    commits.commit_rows(table, rows, where, provenance.branch, provenance.to_properties(), tag)
    return _head_id(table, provenance.branch)


def head(table: Table, branch: str = MAIN) -> Snapshot | None:
    """The newest snapshot of `branch`, or None when the branch does not exist (or has no commit)."""
    return table.current_snapshot() if branch == MAIN else table.snapshot_by_name(branch)


def sequence_number(snapshot: Snapshot) -> int:
    """The snapshot's sequence number; metadata without one (format v1) counts as the initial one, as in pyiceberg."""
    return INITIAL_SEQUENCE_NUMBER if snapshot.sequence_number is None else snapshot.sequence_number


def append_rows(table: Table, rows: pa.Table, provenance: Provenance) -> int:
    """Append `rows` to `provenance.branch` in one snapshot, retried like `replace_rows`; return its id."""
    commits.commit_rows(table, rows, AlwaysFalse(), provenance.branch, provenance.to_properties())
    return _head_id(table, provenance.branch)


def _head_id(table: Table, branch: str) -> int:
    snapshot = head(table, branch)
    assert snapshot is not None, "a commit always leaves a head"
    return snapshot.snapshot_id


def windows_in(table: Table, column: WindowColumn, snapshot_id: int | None = None) -> set[Window]:
    """The windows a table holds rows for, as of `snapshot_id` (current when None)."""
    if table.current_snapshot() is None:
        return set()
    rows = read(table, AlwaysTrue(), snapshot_id, column.columns).drop_duplicates()
    return set(column.windows(rows)) if len(rows) else set()


def schema_fingerprint(table: Table) -> str:
    """A short hash of the table's column names, types and nullability."""
    fields = [(f.name, str(f.field_type), f.required) for f in table.schema().fields]
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:16]


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
