"""Commits of rows: one snapshot each, none lost to a concurrent writer.

A commit is planned against the head of its branch and lands by compare-and-swap on that head.
When another writer landed first, the commit is planned again from scratch on fresh metadata:
which files the filter selects, which of them must be rewritten, on the new head. So every commit
that lands was planned against exactly the state it replaces: two writers of the same rows end with
the batch of the one that commits last, whole; writers of different rows all land.

The private pyiceberg helpers used here are those pyiceberg's own `Transaction.overwrite` and
`delete` are made of; what is composed differently is one snapshot for both halves of a replace.
"""

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.expressions import AlwaysFalse, AlwaysTrue, BooleanExpression
from pyiceberg.expressions.visitors import bind
from pyiceberg.io.pyarrow import (
    ArrowScan,
    _check_pyarrow_schema_compatible,
    _dataframe_to_data_files,
    _expression_to_complementary_pyarrow,
)
from pyiceberg.manifest import DataFile
from pyiceberg.table import DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE, FileScanTask, Table, TableProperties
from pyiceberg.table.update.snapshot import ManageSnapshots
from pyiceberg.utils.config import Config

from lakeops.healing.failures import COMMIT_CONFLICT, is_commit_conflict, retrying
from lakeops.iceberg.transactions import Transaction


@dataclass
class CommitCounts:
    """Commits landed and lost compare-and-swaps retried, in this process (tests and benchmarks read it)."""

    commits: int = 0
    retries: int = 0


COUNTS = CommitCounts()
# file path -> its rows that survive the filter, written as new files (None: no row matched, keep it)
_Rewrites = dict[str, list[DataFile] | None]


def commit_rows(
    table: Table,
    rows: pa.Table,
    where: BooleanExpression,
    branch: str,
    properties: dict[str, str],
    tag: str | None = None,
) -> None:
    """Replace the rows matching `where` on `branch` by `rows` in one snapshot; retry a lost race re-planned.

    Files the filter selects whole are dropped; a file it selects in part is rewritten without the
    matched rows (copy-on-write) in the same snapshot. `AlwaysFalse()` appends. With `tag`, the same
    commit points that tag at the new snapshot (one compare-and-swap for both: a tag moved meanwhile
    is a lost race too). `table` is left at the committed metadata. Raises the last conflict once the
    COMMIT_CONFLICT budget is spent.
    """
    _check_pyarrow_schema_compatible(
        table.schema(),
        provided_schema=rows.schema,
        downcast_ns_timestamp_to_us=Config().get_bool(DOWNCAST_NS_TIMESTAMP_TO_US_ON_WRITE) or False,
        format_version=table.format_version,
    )
    added = _write(table, rows) if len(rows) else []
    rewrites: _Rewrites = {}  # a file's rewrite is the same on every attempt that still finds the file
    landed: list[DataFile] = []

    def attempt() -> None:
        deleted, remainders = _plan(table, where, branch, rewrites)
        _commit_once(table, branch, properties, deleted, remainders + added, tag)
        landed.extend(remainders)

    with_commit_retries(table, attempt)
    _delete_unused(table, rewrites, landed)


def commit_rows_once(
    table: Table, rows: pa.Table, where: BooleanExpression, branch: str, properties: dict[str, str]
) -> None:
    """One attempt of `commit_rows`, planned on `table`'s head: a lost race raises, leaving no file behind.

    For a writer whose rows depend on the head (compaction rewrites what the head holds): its retry
    must read the rows again, which `with_commit_retries` around a fresh read does.
    """
    added = _write(table, rows) if len(rows) else []
    rewrites: _Rewrites = {}
    try:
        deleted, remainders = _plan(table, where, branch, rewrites)
        _commit_once(table, branch, properties, deleted, remainders + added)
    except BaseException:
        _delete_unused(table, {"added": added, **rewrites}, [])
        raise


def with_commit_retries(table: Table, attempt: Callable[[], None]) -> None:
    """Run `attempt` until it lands, refreshing `table` after each lost compare-and-swap (counted)."""

    def refresh(_: BaseException) -> None:
        COUNTS.retries += 1
        table.refresh()

    name = ".".join(table.name())
    retrying(attempt, COMMIT_CONFLICT, retry_if=is_commit_conflict, on_retry=refresh, what=f"commit to {name}")
    COUNTS.commits += 1


def _plan(
    table: Table, where: BooleanExpression, branch: str, rewrites: _Rewrites
) -> tuple[list[DataFile], list[DataFile]]:
    """The files of `branch`'s head to drop, and the rewritten remainders of those selected in part."""
    head = table.snapshot_by_name(branch)
    if head is None or isinstance(where, AlwaysFalse):
        return [], []
    deleted: list[DataFile] = []
    remainders: list[DataFile] = []
    for task in table.scan(row_filter=where, snapshot_id=head.snapshot_id).plan_files():
        path, whole = task.file.file_path, isinstance(task.residual, AlwaysTrue)  # the partition decides
        if not whole and path not in rewrites:
            rewrites[path] = _remainder(table, task, where)
        kept = [] if whole else rewrites[path]
        if kept is not None:
            deleted.append(task.file)
            remainders += kept
    return deleted, remainders


def _remainder(table: Table, task: FileScanTask, where: BooleanExpression) -> list[DataFile] | None:
    """The rows of a file that `where` does not select, as new files; None when it selects none."""
    schema = table.schema()
    rows = ArrowScan(table.metadata, table.io, schema, AlwaysTrue()).to_table([task])
    kept = rows.filter(_expression_to_complementary_pyarrow(bind(schema, where, case_sensitive=True), schema))
    if len(kept) == len(rows):
        return None
    return _write(table, kept) if len(kept) else []


def _write(table: Table, rows: pa.Table) -> list[DataFile]:
    return list(_dataframe_to_data_files(table.metadata, rows, table.io, uuid.uuid4(), itertools.count()))


def _commit_once(
    table: Table,
    branch: str,
    properties: dict[str, str],
    deleted: list[DataFile],
    added: list[DataFile],
    tag: str | None = None,
) -> None:
    """One snapshot on `branch` dropping `deleted` and adding `added`: OVERWRITE, or APPEND when it drops none;
    `tag` (when given) moved to it in the same commit.

    pyiceberg's own retry is switched off for this commit (on a copy of the table): it would keep
    the plan made on the old head, while lakeops plans again from scratch, and counts the retry.
    """
    once = _single_attempt(table)
    tx = Transaction(once)
    update = tx.update_snapshot(snapshot_properties=properties, branch=branch)
    # An append merges small manifests where the table enables it (lake.TABLE_PROPERTIES).
    with update.overwrite() if deleted else update.merge_append() as snapshot:
        for data_file in deleted:
            snapshot.delete_data_file(data_file)
        for data_file in added:
            snapshot.append_data_file(data_file)
    if tag is not None:
        committed = tx.table_metadata.snapshot_by_name(branch)
        assert committed is not None, "the snapshot was just staged"
        ManageSnapshots(transaction=tx).create_tag(committed.snapshot_id, tag).commit()  # staged, not committed
    tx.commit_transaction()
    table.metadata, table.metadata_location = once.metadata, once.metadata_location


def _single_attempt(table: Table) -> Table:
    properties = {**table.metadata.properties, TableProperties.COMMIT_NUM_RETRIES: "0"}
    metadata = table.metadata.model_copy(update={"properties": properties})
    return Table(table.name(), metadata, table.metadata_location, table.io, table.catalog, table.config)


def _delete_unused(table: Table, rewrites: _Rewrites, landed: list[DataFile]) -> None:
    """Delete the rewrites only a lost attempt's plan used: no snapshot references them."""
    kept = {data_file.file_path for data_file in landed}
    for files in rewrites.values():
        for data_file in files or []:
            if data_file.file_path not in kept:
                table.io.delete(data_file.file_path)
