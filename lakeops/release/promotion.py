"""Promotion and rollback: move each table's main branch, one atomic catalog commit per table.

Nothing is copied: green's commits already live in the table (on its release branch), so
promoting is a ref move, as is rolling back. Each move is compare-and-swap (the commit asserts
main is still where the release found it). Tables switch in dataset order (Silver, then Gold) and
roll back in reverse (Gold, then Silver), so at every instant Gold is green only if Silver is; the
other mix (Silver green, Gold blue) is live between the two commits of a switch. A reader that
loads the tables one after the other sees each at its own instant: `lakeops.release.cut` gives
the snapshots of one instant at one release. If a later move fails, the earlier ones are moved
back and SwitchFailed is raised (BaseMoved when a main had moved: the release can catch up).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of
from pyiceberg.table.update.snapshot import ManageSnapshots

from lakeops.datasets.declaration import Dataset
from lakeops.datasets.names import TableRef
from lakeops.errors import BaseMoved, MainMoved, NothingToRollBack, SnapshotNotFound, SwitchFailed, UnsafeRollback
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance, code_version
from lakeops.release import release_log
from lakeops.release.blue_green import GREEN, ReleasePlan
from lakeops.release.comparison import Comparison
from lakeops.release.release_log import Event
from lakeops.versioning.maintenance import COMPACTION

RELEASE_PROPERTY = "lakeops.release"
VERSION_PROPERTY = "lakeops.release.version"
SEAL_OPERATION = "release"


@dataclass(frozen=True)
class Move:
    """Point `table`'s main at `to`, provided it is still at `expected`."""

    table: str
    expected: int
    to: int

    def reverse(self) -> "Move":
        return Move(self.table, self.to, self.expected)


def move_all(catalog: Catalog, moves: Sequence[Move], properties: Mapping[str, str]) -> None:
    """Apply the moves in order, all or nothing; raises SwitchFailed after undoing what was done.

    BaseMoved (a SwitchFailed) when a main was not where its move expected and the undo left every
    table where it was: nothing is switched, and the caller may catch up and try again.
    """
    done: list[tuple[Move, dict[str, str]]] = []
    for move in moves:
        try:
            before = _move(catalog, move, properties)
        except Exception as exc:
            undone, stuck = _undo(catalog, done)
            error = BaseMoved if isinstance(exc, MainMoved) and not stuck else SwitchFailed
            raise error(
                f"switching {move.table} to snapshot {move.to} failed: {exc}; "
                + (f"switched back: {', '.join(undone)}" if undone else "no table had been switched")
                + (f"; COULD NOT switch back (fix by hand): {'; '.join(stuck)}" if stuck else "")
            ) from exc
        done.append((move, before))


def _move(catalog: Catalog, move: Move, properties: Mapping[str, str]) -> dict[str, str]:
    """One table's compare-and-swap ref move with its properties; returns the properties it replaced."""
    table = catalog.load_table(move.table)
    current = table.current_snapshot()
    if current is None or current.snapshot_id != move.expected:
        found = current.snapshot_id if current else None
        raise MainMoved(f"{move.table} main is at snapshot {found}, expected {move.expected} (a concurrent commit)")
    if table.snapshot_by_id(move.to) is None:
        raise SnapshotNotFound(f"{move.table} has no snapshot {move.to} (expired by maintenance?)")
    before = {name: table.properties.get(name, "") for name in properties}
    with table.transaction() as tx:
        tx.set_properties(dict(properties))
        # The staged ref update asserts main is still `move.expected` when the catalog commits.
        ManageSnapshots(tx).set_current_snapshot(snapshot_id=move.to)
    return before


def _undo(catalog: Catalog, done: list[tuple[Move, dict[str, str]]]) -> tuple[list[str], list[str]]:
    undone, stuck = [], []
    for move, before in reversed(done):
        try:
            _move(catalog, move.reverse(), before)
            undone.append(move.table)
        except Exception as exc:  # keep undoing the others; report every table left switched
            stuck.append(f"{move.table}: {exc}")
    return undone, stuck


def seal(
    catalog: Catalog,
    release: ReleasePlan,
    comparison: Comparison,
    approved_by: str,
    refs: Sequence[TableRef] | None = None,
    flow_run_id: str = "",
) -> dict[str, int]:
    """Commit on each green branch an empty snapshot whose summary records the release; return their ids.

    This is the snapshot main moves to, so the promotion commit's snapshot summary carries the verdict.
    """
    summary = comparison.summary()
    sealed = {}
    for ref in release.tables if refs is None else refs:
        table = lake.load(catalog, ref)
        counts = summary[ref.identifier]
        props = {
            f"{RELEASE_PROPERTY}.id": release.release_id,
            f"{RELEASE_PROPERTY}.verdict": str(comparison.verdict),
            f"{RELEASE_PROPERTY}.table-verdict": counts["verdict"],
            f"{RELEASE_PROPERTY}.blue-version": release.blue_version,
            f"{RELEASE_PROPERTY}.green-version": release.green_version,
            f"{RELEASE_PROPERTY}.windows": f"{release.windows[0]}..{release.windows[-1]} ({len(release.windows)})",
            f"{RELEASE_PROPERTY}.approved-by": approved_by,
            f"{RELEASE_PROPERTY}.diff": json.dumps(counts["diff"], default=str)[:4000] if counts["diff"] else "",
            # Every commit carries its provenance, the seal too: which run and which code promoted.
            **Provenance(code_version(), flow_run_id, "", release.release_id, operation=SEAL_OPERATION).to_properties(),
        }
        empty = pa.Table.from_pylist([], schema=table.schema().as_arrow())
        table.append(empty, snapshot_properties=props, branch=release.branch(GREEN))
        head = lake.head(table, release.branch(GREEN))
        assert head is not None, "a commit always leaves a head"
        sealed[ref.identifier] = head.snapshot_id
    return sealed


def promote(
    catalog: Catalog, release: ReleasePlan, comparison: Comparison, actor: str, flow_run_id: str = ""
) -> dict[str, int]:
    """Seal green, switch every table's main to it (all or nothing), log it; return table -> new main.

    Safe to retry: a table whose main already is this release's sealed snapshot is not moved again.
    Raises BaseMoved, not logged, when a table's main moved since the release's base (the caller
    catches up: `catch_up.switch`), and SwitchFailed, logged as a failed release, for any other failure.
    """
    switched = _already_on(catalog, release)
    pending = [ref for ref in release.tables if ref.identifier not in switched]
    sealed = {**switched, **seal(catalog, release, comparison, actor, pending, flow_run_id)}
    moves = [Move(ref.identifier, release.base[ref.identifier], sealed[ref.identifier]) for ref in pending]
    logged = {"actor": actor, "target": sealed, "verdict": str(comparison.verdict), "flow_run_id": flow_run_id}
    try:
        move_all(catalog, moves, {RELEASE_PROPERTY: release.release_id, VERSION_PROPERTY: release.green_version})
    except BaseMoved:
        raise
    except SwitchFailed as exc:
        release_log.record(catalog, release.entry(Event.FAILED, reason=str(exc), **logged))
        raise
    release_log.record(catalog, release.entry(Event.PROMOTED, **logged))
    return sealed


def _already_on(catalog: Catalog, release: ReleasePlan) -> dict[str, int]:
    """Tables whose main is this release's sealed snapshot already (a retried promotion)."""
    found = {}
    for ref in release.tables:
        head = lake.head(lake.load(catalog, ref))
        if head and sealed_by(head) == release.release_id:
            found[ref.identifier] = head.snapshot_id
    return found


def sealed_by(snapshot: Snapshot) -> str | None:
    """The id of the release whose seal `snapshot` is, or None."""
    props = snapshot.summary.additional_properties if snapshot.summary else {}
    return props.get(f"{RELEASE_PROPERTY}.id") or None


@dataclass(frozen=True)
class RolledBack:
    release_id: str
    restored: dict[str, int]
    live_before: str
    live_now: str | None


def rollback(
    catalog: Catalog, dataset: Dataset, actor: str, reason: str = "", force: bool = False, flow_run_id: str = ""
) -> RolledBack:
    """Point every table of `dataset` back at what consumers read before the live release, in one commit each.

    Raises NothingToRollBack, SnapshotNotFound when maintenance expired the earlier state (nothing
    changes), and UnsafeRollback when main has commits since the promotion other than compactions
    (they would be discarded) unless `force`.
    """
    refs = tuple(dataset.layer(name).table for name in dataset.release)
    if not refs:
        raise ValueError(f"dataset {dataset.name} declares no release scope")
    current = release_log.live(catalog, dataset.name)
    if current is None:
        raise NothingToRollBack(f"dataset {dataset.name} has no promoted release to roll back")
    promoted = current.last(Event.PROMOTED)
    assert promoted is not None, "a live release has a promoted entry"
    # A table already at its base was rolled back by an earlier attempt whose log entry did not land.
    tables = [t for t in (lake.load(catalog, ref) for ref in refs) if _main(t) != promoted.base[_name(t)]]
    for table in tables:
        _check_restorable(table, current.release_id, promoted.base, promoted.target, force)
    moves = [Move(_name(t), _main(t), promoted.base[_name(t)]) for t in reversed(tables)]
    previous = _previous_live(catalog, dataset.name, current.release_id)
    move_all(
        catalog,
        moves,
        {
            RELEASE_PROPERTY: previous.release_id if previous else "",
            VERSION_PROPERTY: previous.first.green_version if previous else "",
        },
    )
    entry = release_log.Entry(
        current.release_id,
        dataset.name,
        Event.ROLLED_BACK,
        release_log.now(),
        actor=actor,
        blue_version=current.first.blue_version,
        green_version=current.first.green_version,
        windows=current.first.windows,
        base=promoted.target,
        target=promoted.base,
        reason=reason,
        flow_run_id=flow_run_id,
    )
    release_log.record(catalog, entry)
    return RolledBack(
        current.release_id, dict(promoted.base), current.release_id, previous.release_id if previous else None
    )


def _check_restorable(table: Table, release_id: str, base: dict[str, int], target: dict[str, int], force: bool) -> None:
    name = _name(table)
    if table.snapshot_by_id(base[name]) is None:
        raise SnapshotNotFound(
            f"cannot roll back release {release_id}: {name} snapshot {base[name]}, what consumers read before it, "
            "was expired by maintenance; nothing was changed"
        )
    head = table.current_snapshot()
    if head is None or force or head.snapshot_id == target[name]:
        return
    since = []
    for snapshot in ancestors_of(head, table.metadata):
        if snapshot.snapshot_id == target[name]:
            break
        since.append(snapshot)
    else:
        raise UnsafeRollback(
            f"cannot roll back release {release_id}: {name} main no longer descends from the release's snapshot "
            f"{target[name]} (moved by hand?). Rerun with --force to restore snapshot {base[name]} anyway."
        )
    made = [lake.provenance_of(s) for s in since]
    kept = [p for p in made if p is None or p.operation != COMPACTION]
    if kept:
        windows = sorted({p.window for p in kept if p and p.window})
        raise UnsafeRollback(
            f"cannot roll back release {release_id}: {name} main has {len(kept)} snapshot(s) since it was "
            f"promoted (windows: {', '.join(windows) or 'none named'}); rolling back would discard them. "
            "Rerun with --force to discard them."
        )


def _previous_live(catalog: Catalog, dataset: str, release_id: str) -> release_log.Release | None:
    earlier = [r for r in release_log.releases(catalog, dataset) if r.live and r.release_id != release_id]
    return earlier[-1] if earlier else None


def _name(table: Table) -> str:
    return ".".join(table.name()[-2:])


def _main(table: Table) -> int:
    head = table.current_snapshot()
    assert head is not None, "a released table has a main head"
    return head.snapshot_id
