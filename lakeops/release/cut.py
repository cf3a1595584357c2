"""A consistent cut: snapshots of a dataset's released tables that were main together, at one release.

The catalogs here have no multi-table commit, so a switch is one commit per table, and two plain
loads are two instants: a reader that loads Gold and then Silver pairs Gold of one release with
Silver of another when a switch's commits land between its loads (a rollback's, since Gold goes
back first), and any reader may land between the two commits of a switch. `consistent_cut`
reads every table's main twice (a double collect). When no table committed between its two reads
(its metadata file is the same; each commit writes a new one, so even a move away and back shows)
and every table names the same release (`lakeops.release`, set in the very commit that moves its
ref), the snapshots were all main at one instant, outside any switch. Otherwise it reads again.
A reader then scans each table at its snapshot (`Cut.scan`), however main moves afterwards.
"""

import time
from dataclasses import dataclass

from pyiceberg.catalog import Catalog
from pyiceberg.table import DataScan

from lakeops.datasets.declaration import Dataset
from lakeops.datasets.names import TableRef
from lakeops.errors import NoConsistentCut, SnapshotNotFound
from lakeops.release.promotion import RELEASE_PROPERTY

ATTEMPTS = 20
BACKOFF_S = 0.005  # times the attempt number: a switch between two commits lasts milliseconds


@dataclass(frozen=True)
class Cut:
    """Each released table's snapshot, all main together at one instant, all of one release."""

    dataset: str
    release_id: str  # the release every table names; "" before the first one (or rolled back to it)
    snapshots: dict[str, int]  # table -> snapshot id, in switch order

    def scan(self, catalog: Catalog, table: TableRef | str) -> DataScan:
        """A plain pyiceberg scan of `table` at its snapshot in the cut."""
        name = str(table)
        return catalog.load_table(name).scan(snapshot_id=self.snapshots[name])


@dataclass(frozen=True)
class _Main:
    metadata: str  # the metadata file: a new one per commit
    snapshot_id: int
    release_id: str


def consistent_cut(catalog: Catalog, dataset: Dataset, attempts: int = ATTEMPTS) -> Cut:
    """The snapshots of every table of `dataset`'s release scope, main together at one instant, at one release.

    Raises NoConsistentCut when `attempts` double reads all saw a commit or a switch in progress
    (or one left half done), and SnapshotNotFound when a table has no snapshot yet.
    """
    refs = tuple(dataset.layer(name).table for name in dataset.release)
    if not refs:
        raise ValueError(f"dataset {dataset.name} declares no release scope")
    seen: dict[str, str] = {}
    for attempt in range(1, attempts + 1):
        first = _collect(catalog, refs)
        second = _collect(catalog, refs)
        # Each table was unchanged from its first read to its second: all held at the end of the first pass.
        releases = {main.release_id for main in second.values()}
        if first == second and len(releases) == 1:
            return Cut(dataset.name, releases.pop(), {name: main.snapshot_id for name, main in second.items()})
        seen = {name: main.release_id or "none" for name, main in second.items()}
        time.sleep(BACKOFF_S * attempt)
    raise NoConsistentCut(
        f"no consistent cut of {dataset.name} in {attempts} reads: its tables kept committing or named different "
        f"releases (last read: {seen}); a switch left half done shows in `lakeops release list`"
    )


def _collect(catalog: Catalog, refs: tuple[TableRef, ...]) -> dict[str, _Main]:
    found = {}
    for ref in refs:
        table = catalog.load_table(ref.identifier)
        head = table.current_snapshot()
        if head is None:
            raise SnapshotNotFound(f"{ref} main has no snapshot yet")
        release = table.properties.get(RELEASE_PROPERTY, "")
        found[ref.identifier] = _Main(table.metadata_location, head.snapshot_id, release)
    return found
