"""lakeops.timetravel: reading tables built by the pipeline as of a snapshot id, a time or a ref."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from declarations.flights import landing
from lakeops.datasets.windows import Window
from lakeops.errors import RefNotFound, SnapshotNotFound
from lakeops.versioning import maintenance, timetravel
from lakeops.versioning.timetravel import AsOf

from .conftest import DAY_A, DAY_B, assert_gold_matches, expected_gold
from .flights import BRONZE_FLIGHTS, GOLD, GOLD_DAILY_DELAYS, SILVER_FLIGHTS, ingest_bronze
from .versioning_helpers import DAY_C, RUN, Built, build_day, canonical, dropper, on_day, open_lake, rows_of


def committed_at(table, snapshot_id: int) -> datetime:
    return datetime.fromtimestamp(table.snapshot_by_id(snapshot_id).timestamp_ms / 1000, tz=UTC)


@dataclass(frozen=True)
class TwoDays:
    """A lake where day A, then day B, went through Bronze, Silver and Gold."""

    catalog: object
    first: Built
    second: Built

    @property
    def gold(self) -> tuple[int, int]:
        return self.first.gold.snapshot_id, self.second.gold.snapshot_id


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> TwoDays:
    """One lake for the whole module (the pipeline is the slow part). Tests that add refs or expire
    snapshots touch a table or a ref no other test reads."""
    home = tmp_path_factory.mktemp("timetravel")
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    return TwoDays(catalog, build_day(catalog, drop, DAY_A), build_day(catalog, drop, DAY_B))


def gold_table(catalog):
    return catalog.load_table(GOLD_DAILY_DELAYS.identifier)


def test_as_of_each_snapshot_id_reads_that_snapshots_rows(shared):
    catalog, (g1, g2) = shared.catalog, shared.gold
    table = gold_table(catalog)

    snap1, rows1 = timetravel.read_as_of(table, AsOf(snapshot_id=g1))
    snap2, rows2 = timetravel.read_as_of(table, AsOf(snapshot_id=g2))

    assert (snap1.snapshot_id, snap2.snapshot_id) == (g1, g2)
    assert set(rows1["flight_date"]) == {DAY_A}
    assert_gold_matches(rows1.drop(columns="flight_date"), expected_gold(landing.day_rows(DAY_A)))
    assert set(rows2["flight_date"]) == {DAY_A, DAY_B}
    assert_gold_matches(on_day(rows2, DAY_B).drop(columns="flight_date"), expected_gold(landing.day_rows(DAY_B)))


def test_as_of_a_time_between_two_commits_reads_the_earlier_one(shared):
    catalog, (g1, g2) = shared.catalog, shared.gold
    table = gold_table(catalog)
    t1, t2 = committed_at(table, g1), committed_at(table, g2)
    assert t2 - t1 >= timedelta(milliseconds=2), "the two commits need distinct times for this test"

    between, rows = timetravel.read_as_of(table, AsOf(time=t1 + (t2 - t1) / 2))

    assert between.snapshot_id == g1
    pd.testing.assert_frame_equal(
        canonical(rows, GOLD_DAILY_DELAYS), canonical(rows_of(catalog, GOLD_DAILY_DELAYS, g1), GOLD_DAILY_DELAYS)
    )
    # The commit instant itself belongs to the new snapshot; a moment before it, to the old one.
    assert timetravel.resolve(table, AsOf(time=t2)).snapshot_id == g2
    assert timetravel.resolve(table, AsOf(time=t2 - timedelta(milliseconds=1))).snapshot_id == g1
    assert timetravel.resolve(table, AsOf(time=datetime.now(UTC) + timedelta(days=1))).snapshot_id == g2


def test_a_time_without_offset_is_utc(shared):
    catalog, (g1, g2) = shared.catalog, shared.gold
    table = gold_table(catalog)
    t1, t2 = committed_at(table, g1), committed_at(table, g2)
    middle = t1 + (t2 - t1) / 2
    naive = middle.replace(tzinfo=None)
    in_paris = middle.astimezone(timezone(timedelta(hours=1)))

    assert AsOf(time=naive).time == middle
    assert timetravel.resolve(table, AsOf(time=naive)).snapshot_id == g1
    assert timetravel.resolve(table, AsOf.parse_time(in_paris.isoformat())).snapshot_id == g1
    assert timetravel.resolve(table, AsOf.parse_time(naive.isoformat())).snapshot_id == g1


def test_as_of_a_tag_or_branch_reads_its_snapshot(shared):
    catalog, (g1, _) = shared.catalog, shared.gold
    table = gold_table(catalog)
    table.manage_snapshots().create_tag(g1, "q1-close").create_branch(g1, "audit").commit()

    for name in ("q1-close", "audit"):
        snapshot, rows = timetravel.read_as_of(table, AsOf(ref=name))
        assert snapshot.snapshot_id == g1, name
        assert set(rows["flight_date"]) == {DAY_A}, name


def test_row_filter_and_columns_apply_to_the_resolved_snapshot(shared):
    catalog, (_, g2) = shared.catalog, shared.gold
    table = gold_table(catalog)

    _, rows = timetravel.read_as_of(
        table, AsOf(snapshot_id=g2), GOLD.window.filter(Window(DAY_B)), ("origin", "flights")
    )

    assert list(rows.columns) == ["origin", "flights"]
    expected = expected_gold(landing.day_rows(DAY_B))
    assert sorted(zip(rows["origin"], rows["flights"], strict=True)) == list(
        zip(expected["origin"], expected["flights"], strict=True)
    )


def test_no_selector_reads_the_current_snapshot(shared):
    catalog, (_, g2) = shared.catalog, shared.gold

    snapshot, rows = timetravel.read_as_of(gold_table(catalog), AsOf())

    assert snapshot.snapshot_id == g2
    assert set(rows["flight_date"]) == {DAY_A, DAY_B}


def test_unknown_snapshot_id_raises_naming_the_table(shared):
    catalog = shared.catalog
    with pytest.raises(SnapshotNotFound, match=r"gold\.daily_delays has no snapshot 12345"):
        timetravel.read_as_of(gold_table(catalog), AsOf(snapshot_id=12345))


def test_expired_snapshot_id_raises_naming_the_table(shared):
    catalog, old = shared.catalog, shared.first.bronze.snapshot_id
    catalog.load_table(BRONZE_FLIGHTS.identifier).maintenance.expire_snapshots().by_id(old).commit()

    with pytest.raises(SnapshotNotFound, match=rf"bronze\.flights has no snapshot {old} \(never existed, or expired\)"):
        timetravel.resolve(catalog.load_table(BRONZE_FLIGHTS.identifier), AsOf(snapshot_id=old))


def test_a_time_before_the_first_snapshot_raises_naming_the_table(shared):
    catalog, (g1, _) = shared.catalog, shared.gold
    before = committed_at(gold_table(catalog), g1) - timedelta(seconds=1)

    with pytest.raises(SnapshotNotFound, match=r"gold\.daily_delays has no snapshot at or before .*oldest retained"):
        timetravel.resolve(gold_table(catalog), AsOf(time=before))


def test_an_empty_table_raises_for_every_selector(catalog):
    table = gold_table(catalog)

    with pytest.raises(SnapshotNotFound, match=r"gold\.daily_delays has no snapshot yet"):
        timetravel.resolve(table, AsOf())
    with pytest.raises(SnapshotNotFound, match=r"gold\.daily_delays has no snapshot at or before .*nothing committed"):
        timetravel.resolve(table, AsOf(time=datetime.now(UTC)))
    with pytest.raises(RefNotFound, match=r"gold\.daily_delays has no tag or branch 'main'"):
        timetravel.resolve(table, AsOf(ref="main"))


def test_unknown_ref_raises_naming_the_table_and_the_known_refs(shared):
    catalog = shared.catalog
    catalog.load_table(SILVER_FLIGHTS.identifier).manage_snapshots().create_tag(
        shared.first.silver.snapshot_id, "q1-close"
    ).commit()

    known = r"silver\.flights has no tag or branch 'q2-close' \(known: main, q1-close\)"
    with pytest.raises(RefNotFound, match=known):
        timetravel.resolve(catalog.load_table(SILVER_FLIGHTS.identifier), AsOf(ref="q2-close"))


def test_several_selectors_or_a_bad_time_raise_value_error():
    with pytest.raises(ValueError, match="not several"):
        AsOf(snapshot_id=1, ref="main")
    with pytest.raises(ValueError, match="not several"):
        AsOf(snapshot_id=1, time=datetime.now(UTC))
    with pytest.raises(ValueError, match="ISO 8601.*'yesterday'"):
        AsOf.parse_time("yesterday")
    assert AsOf.parse_time("2026-11-20T06:00Z").time == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert AsOf.parse_time("2026-11-20T08:00+02:00").time == datetime(2026, 11, 20, 6, tzinfo=UTC)


def test_a_time_whose_snapshot_expired_raises_instead_of_reading_an_older_state(catalog, drop_day):
    """As of a time when the table held A and B, a reader must get A and B or an error, never A alone.

    The first snapshot is kept by a tag, the middle one expires: the table's state at the middle
    commit's time no longer exists, so that request is impossible.
    """
    first, middle, _ = (ingest_bronze(catalog, drop_day(d), RUN).snapshot_id for d in (DAY_A, DAY_B, DAY_C))
    bronze = catalog.load_table(BRONZE_FLIGHTS.identifier)
    bronze.manage_snapshots().create_tag(first, "kept").commit()
    at_middle = committed_at(bronze, middle)
    policy = maintenance.RetentionPolicy(keep_last=1, max_age=timedelta(0))
    protected = {first, bronze.current_snapshot().snapshot_id}
    assert maintenance.expire(bronze, policy, protected, maintenance.utcnow()) == 1

    with pytest.raises(SnapshotNotFound, match=r"bronze\.flights"):
        timetravel.resolve(catalog.load_table(BRONZE_FLIGHTS.identifier), AsOf(time=at_middle))
