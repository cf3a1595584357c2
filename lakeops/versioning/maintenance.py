"""Table maintenance: compact small files, expire old snapshots, delete files nothing references.

Commit cost in pyiceberg grows with the snapshots a table keeps; expiry keeps it flat. What expiry
never removes: tags and branch heads (last-known-good among them), the history of replay branches,
and the Bronze snapshots that published Silver rows record as their input (what replay re-reads).
pyiceberg deletes no files, so the orphan sweep is ours.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, Or
from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from lakeops.datasets.declaration import Layer
from lakeops.datasets.filters import FilterValue, equal_to
from lakeops.datasets.names import TableRef
from lakeops.datasets.registry import Registry
from lakeops.iceberg import commits, lake, storage
from lakeops.iceberg.provenance import Provenance
from lakeops.versioning import replay

COMPACTION = "compaction"


@dataclass(frozen=True)
class RetentionPolicy:
    """How much history to keep and when to compact."""

    keep_last: int = 50
    max_age: timedelta = timedelta(days=7)
    orphan_grace: timedelta = timedelta(hours=1)
    compact_min_files: int = 8

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            raise ValueError("keep_last must be at least 1: the current snapshot is always kept")
        if self.compact_min_files < 2:
            raise ValueError("compact_min_files must be at least 2")


@dataclass(frozen=True)
class MaintenanceReport:
    table: str
    snapshots_before: int
    expired: int
    partitions_compacted: int
    files_before: int
    files_after: int
    orphans_removed: int
    orphan_bytes: int

    def __str__(self) -> str:
        return (
            f"{self.table}: expired {self.expired} of {self.snapshots_before} snapshots; "
            f"compacted {self.partitions_compacted} partitions ({self.files_before} -> {self.files_after} "
            f"data files); removed {self.orphans_removed} orphan files ({self.orphan_bytes:,} bytes)"
        )


def maintain(
    catalog: Catalog,
    registry: Registry,
    refs: tuple[TableRef, ...],
    policy: RetentionPolicy,
    made_by: Provenance,
    now: datetime,
) -> list[MaintenanceReport]:
    """Compact, expire, then sweep orphans, table by table."""
    reports = []
    for ref in refs:
        table = lake.load(catalog, ref)
        before = len(table.snapshots())
        files_before = _data_file_count(table)
        compacted = compact(table, policy.compact_min_files, made_by)
        expired = expire(table, policy, protected_snapshots(catalog, registry, ref), now)
        removed, size = remove_orphans(table, now - policy.orphan_grace)
        reports.append(
            MaintenanceReport(
                str(ref), before, expired, compacted, files_before, _data_file_count(table), removed, size
            )
        )
    return reports


def protected_snapshots(catalog: Catalog, registry: Registry, ref: TableRef) -> set[int]:
    """Snapshots expiry must keep: ref heads, replay-branch history, and the snapshots of this table that
    its consumers' rows or commits record as their input (what replay and releases re-read)."""
    table = lake.load(catalog, ref)
    keep = {r.snapshot_id for r in table.metadata.refs.values()}
    main_line = {s.snapshot_id for s in ancestors_of(table.current_snapshot(), table.metadata)}
    for name, r in table.metadata.refs.items():
        if name != lake.MAIN and r.snapshot_ref_type.value == "branch":
            for snapshot in ancestors_of(table.snapshot_by_id(r.snapshot_id), table.metadata):
                if snapshot.snapshot_id in main_line:
                    break
                keep.add(snapshot.snapshot_id)
    if any(str(layer.table) == str(ref) for _, layer in registry.layers()):
        _, layer = registry.by_table(ref)
        qualified = registry.qualified(layer)
        for dataset, consumer in registry.consumers(qualified):
            # A replay or release of the consumer's dataset re-reads only the inputs it does not rebuild.
            if qualified in replay.external_inputs(registry, replay.replayed_layers(dataset)):
                keep |= _recorded_inputs(lake.load(catalog, consumer.table), consumer, qualified, ref)
    return keep


def expire(table: Table, policy: RetentionPolicy, protected: set[int], now: datetime) -> int:
    """Expire snapshots older than max_age beyond the newest keep_last, except protected ones."""
    newest_first = sorted(table.snapshots(), key=lake.sequence_number, reverse=True)
    cutoff_ms = (now - policy.max_age).timestamp() * 1000
    doomed = [
        s.snapshot_id
        for s in newest_first[policy.keep_last :]
        if s.timestamp_ms < cutoff_ms and s.snapshot_id not in protected
    ]
    doomed = [s for s in doomed if s not in {r.snapshot_id for r in table.metadata.refs.values()}]
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
    return len(doomed)


def compact(table: Table, min_files: int, made_by: Provenance) -> int:
    """Rewrite each partition holding at least `min_files` data files as one file; one snapshot in all.

    One OVERWRITE snapshot drops the crowded partitions' files and adds their rows rewritten, so no
    snapshot (no time to travel to) shows a partition without its rows. A concurrent commit wins:
    the rows are read again from the new head and the compaction planned again.
    """
    if table.current_snapshot() is None:
        return 0
    files = table.inspect.files()
    crowded = _crowded_partitions(files, min_files)
    if not crowded:
        return 0
    props = Provenance(made_by.code_version, made_by.flow_run_id, "", "", operation=COMPACTION).to_properties()
    where = reduce(Or, crowded)

    def attempt() -> None:
        commits.commit_rows_once(table, table.scan(row_filter=where).to_arrow(), where, lake.MAIN, props)

    commits.with_commit_retries(table, attempt)
    return len(crowded)


def remove_orphans(table: Table, older_than: datetime) -> tuple[int, int]:
    """Delete files under the table's location that no retained snapshot or metadata file references.

    Files newer than `older_than` are kept: they may belong to a commit still in flight.
    Readiness markers (`_ready/`, `_READY`) are not Iceberg files and are left alone. On S3 the listing
    and the deletes go through the table's own FileIO filesystem (its endpoint and keys).
    """
    filesystem, base = storage.filesystem_of(table.io, table.location())
    referenced = {storage.fs_path(p) for p in referenced_files(table)}
    removed, size = 0, 0
    for info in filesystem.get_file_info(pafs.FileSelector(base, recursive=True)):
        if info.type != pafs.FileType.File or info.path in referenced:
            continue
        relative = info.path[len(base) :]
        if "/_ready/" in relative or relative.endswith("/_READY"):
            continue
        if info.mtime is not None and info.mtime.replace(tzinfo=info.mtime.tzinfo or UTC) >= older_than:
            continue
        filesystem.delete_file(info.path)
        removed, size = removed + 1, size + (info.size or 0)
    return removed, size


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata reaches: metadata files, manifest lists, manifests, data files."""
    io = table.io
    found = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    found |= {stat.statistics_path for stat in table.metadata.statistics}
    manifests_seen: set[str] = set()
    for snapshot in table.snapshots():
        found.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in manifests_seen:
                continue
            manifests_seen.add(manifest.manifest_path)
            found.add(manifest.manifest_path)
            found |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(io, discard_deleted=True)}
    return found


def _crowded_partitions(files: pa.Table, min_files: int) -> list[BooleanExpression]:
    data_files = files.filter(pc.equal(files["content"], 0))
    groups: dict[tuple[tuple[str, object], ...], int] = defaultdict(int)
    for partition in data_files["partition"].to_pylist():
        groups[tuple(sorted((partition or {}).items()))] += 1
    return [_partition_filter(dict(key)) for key, count in groups.items() if count >= min_files]


def _partition_filter(values: dict[str, object]) -> BooleanExpression:
    where: BooleanExpression = AlwaysTrue()
    for column, value in values.items():
        where = And(where, equal_to(column, _partition_value(value)))
    return where


def _partition_value(value: object) -> FilterValue:
    """A partition value as a filter literal: dates and times as their ISO text."""
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, FilterValue):
        return value
    raise TypeError(f"Invalid literal value: {value!r}")  # pyiceberg's own error for a value it cannot filter on


def _recorded_inputs(consumer: Table, layer: Layer, qualified_input: str, ref: TableRef) -> set[int]:
    """Snapshots of `ref` that a consumer records: in its lineage column (main and every branch head), or
    in the provenance of the commits on its main line."""
    keep: set[int] = set()
    if layer.lineage and layer.inputs[0] == qualified_input:
        for r in consumer.metadata.refs.values():
            rows = lake.read(consumer, AlwaysTrue(), r.snapshot_id, (layer.lineage,))
            keep |= {int(v) for v in rows[layer.lineage].dropna().unique()}
        return keep
    head = consumer.current_snapshot()
    for snapshot in ancestors_of(head, consumer.metadata) if head else ():
        made = lake.provenance_of(snapshot)
        if made and str(ref) in made.inputs:
            keep.add(made.inputs[str(ref)])
    return keep


def _data_file_count(table: Table) -> int:
    if table.current_snapshot() is None:
        return 0
    files = table.inspect.files()
    return int(pc.sum(pc.equal(files["content"], 0)).as_py() or 0)


def utcnow() -> datetime:
    return datetime.now(UTC)
