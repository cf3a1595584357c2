"""lakeops.rollback: one commit moves main back, refused when the target was built from corrected input."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pytest

from lakeops.errors import RefNotFound, SnapshotNotFound, UnsafeRollback
from lakeops.versioning import rollback
from lakeops.versioning.timetravel import AsOf

from .conftest import DAY_A, DAY_B
from .flights import BRONZE_FLIGHTS, GOLD_DAILY_DELAYS, REGISTRY, SILVER_FLIGHTS, ingest_bronze
from .versioning_helpers import RUN, build_day, canonical, corrected, current_id, dropper, open_lake, rows_of


def consumer_view(catalog, ref) -> pd.DataFrame:
    """What any plain pyiceberg reader sees on main."""
    return canonical(catalog.load_table(ref.identifier).scan().to_pandas(), ref)


def table_state(catalog, ref) -> tuple:
    table = catalog.load_table(ref.identifier)
    return (
        table.metadata_location,
        current_id(catalog, ref),
        [s.snapshot_id for s in table.snapshots()],
        {name: r.snapshot_id for name, r in table.metadata.refs.items()},
    )


@pytest.fixture(scope="module")
def two_days(tmp_path_factory):
    """A then B through every layer. Each test below rolls back a different table."""
    home = tmp_path_factory.mktemp("rollback-two-days")
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    return catalog, build_day(catalog, drop, DAY_A), build_day(catalog, drop, DAY_B)


def test_rollback_is_one_commit_that_changes_what_a_plain_reader_sees(two_days):
    catalog, first, second = two_days
    others = {ref: table_state(catalog, ref) for ref in (BRONZE_FLIGHTS, SILVER_FLIGHTS)}
    table = catalog.load_table(GOLD_DAILY_DELAYS.identifier)
    snapshots_before, log_before = list(table.snapshots()), len(table.metadata.metadata_log)
    assert set(consumer_view(catalog, GOLD_DAILY_DELAYS)["flight_date"]) == {DAY_A, DAY_B}

    result = rollback.rollback(catalog, REGISTRY, GOLD_DAILY_DELAYS, AsOf(snapshot_id=first.gold.snapshot_id))

    pd.testing.assert_frame_equal(
        consumer_view(catalog, GOLD_DAILY_DELAYS),
        canonical(rows_of(catalog, GOLD_DAILY_DELAYS, first.gold.snapshot_id), GOLD_DAILY_DELAYS),
    )
    assert set(consumer_view(catalog, GOLD_DAILY_DELAYS)["flight_date"]) == {DAY_A}
    table = catalog.load_table(GOLD_DAILY_DELAYS.identifier)
    assert table.snapshots() == snapshots_before  # no data rewritten: main now points at an existing snapshot
    assert len(table.metadata.metadata_log) == log_before + 1  # exactly one metadata commit
    assert (result.table, result.previous_snapshot_id, result.snapshot_id) == (
        "gold.daily_delays",
        second.gold.snapshot_id,
        first.gold.snapshot_id,
    )
    assert result.check.safe and result.check.corrected == ()
    assert {ref: table_state(catalog, ref) for ref in others} == others  # Bronze and Silver did not move


def test_rollback_to_a_time_or_a_tag(two_days):
    catalog, first, second = two_days
    silver = catalog.load_table(SILVER_FLIGHTS.identifier)
    silver.manage_snapshots().create_tag(second.silver.snapshot_id, "before-rollback").commit()
    midway = datetime.fromtimestamp(silver.snapshot_by_id(second.silver.snapshot_id).timestamp_ms / 1000 - 0.001, UTC)

    by_time = rollback.rollback(catalog, REGISTRY, SILVER_FLIGHTS, AsOf(time=midway))

    assert by_time.snapshot_id == first.silver.snapshot_id == current_id(catalog, SILVER_FLIGHTS)
    assert set(consumer_view(catalog, SILVER_FLIGHTS)["flight_date"]) == {DAY_A}

    by_tag = rollback.rollback(catalog, REGISTRY, SILVER_FLIGHTS, AsOf(ref="before-rollback"))

    assert by_tag.snapshot_id == second.silver.snapshot_id == current_id(catalog, SILVER_FLIGHTS)
    assert set(consumer_view(catalog, SILVER_FLIGHTS)["flight_date"]) == {DAY_A, DAY_B}


@dataclass(frozen=True)
class Corrected:
    """Gold: A (from batch a1), then B, then A rebuilt from the corrected batch a2."""

    catalog: object
    a1: str
    a2: str
    before_correction: int
    after_correction: int
    silver_a1: int


@pytest.fixture(scope="module")
def corrected_lake(tmp_path_factory) -> Corrected:
    home = tmp_path_factory.mktemp("rollback")
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    a1 = build_day(catalog, drop, DAY_A)
    b = build_day(catalog, drop, DAY_B)
    a2 = build_day(catalog, drop, DAY_A, text=corrected(DAY_A))
    (batch_a1,) = set(rows_of(catalog, BRONZE_FLIGHTS, a1.bronze.snapshot_id)["_batch_id"])
    (batch_a2,) = set(rows_of(catalog, BRONZE_FLIGHTS, a2.bronze.snapshot_id).query("day == 2")["_batch_id"])
    return Corrected(
        catalog,
        batch_a1,
        batch_a2,
        b.gold.snapshot_id,
        a2.gold.snapshot_id,
        a1.silver.snapshot_id,
    )


def test_rollback_to_output_built_from_since_corrected_input_is_refused(corrected_lake):
    c = corrected_lake
    assert c.a1 != c.a2
    before = table_state(c.catalog, GOLD_DAILY_DELAYS), consumer_view(c.catalog, GOLD_DAILY_DELAYS)

    with pytest.raises(UnsafeRollback) as caught:
        rollback.rollback(c.catalog, REGISTRY, GOLD_DAILY_DELAYS, AsOf(snapshot_id=c.before_correction))

    message = str(caught.value)
    assert f"2013-01-02: built from batch {c.a1}, Bronze now holds {c.a2}" in message
    assert "1 window(s)" in message and "2013-01-03" not in message
    assert "--force" in message
    assert table_state(c.catalog, GOLD_DAILY_DELAYS) == before[0]
    pd.testing.assert_frame_equal(consumer_view(c.catalog, GOLD_DAILY_DELAYS), before[1])


def test_check_names_each_corrected_window_for_any_layer(corrected_lake):
    c = corrected_lake
    for ref, target in ((GOLD_DAILY_DELAYS, c.before_correction), (SILVER_FLIGHTS, c.silver_a1)):
        snapshot = c.catalog.load_table(ref.identifier).snapshot_by_id(target)

        verdict = rollback.check(c.catalog, REGISTRY, ref, snapshot)

        assert not verdict.safe
        assert verdict.corrected == (rollback.CorrectedWindow("2013-01-02", c.a1, c.a2),), ref
    current = c.catalog.load_table(GOLD_DAILY_DELAYS.identifier).snapshot_by_id(c.after_correction)
    assert rollback.check(c.catalog, REGISTRY, GOLD_DAILY_DELAYS, current).safe


def test_a_forced_rollback_goes_through_and_reports_what_it_republished(corrected_lake):
    c = corrected_lake

    result = rollback.rollback(
        c.catalog, REGISTRY, GOLD_DAILY_DELAYS, AsOf(snapshot_id=c.before_correction), force=True
    )

    assert current_id(c.catalog, GOLD_DAILY_DELAYS) == c.before_correction == result.snapshot_id
    assert result.check.corrected == (rollback.CorrectedWindow("2013-01-02", c.a1, c.a2),)
    assert set(consumer_view(c.catalog, GOLD_DAILY_DELAYS).query("flight_date == @DAY_A")["_batch_id"]) == {c.a1}
    # Put it back for the other tests of the module (and show that rolling forward is safe).
    assert rollback.rollback(c.catalog, REGISTRY, GOLD_DAILY_DELAYS, AsOf(snapshot_id=c.after_correction)).check.safe


def test_an_unknown_or_expired_target_raises_and_changes_nothing(catalog, drop_day):
    old = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    ingest_bronze(catalog, drop_day(DAY_B), RUN)
    catalog.load_table(BRONZE_FLIGHTS.identifier).maintenance.expire_snapshots().by_id(old).commit()
    before = table_state(catalog, BRONZE_FLIGHTS)

    with pytest.raises(SnapshotNotFound, match=rf"bronze\.flights has no snapshot {old}"):
        rollback.rollback(catalog, REGISTRY, BRONZE_FLIGHTS, AsOf(snapshot_id=old), force=True)
    with pytest.raises(SnapshotNotFound, match=r"bronze\.flights has no snapshot 7"):
        rollback.rollback(catalog, REGISTRY, BRONZE_FLIGHTS, AsOf(snapshot_id=7))
    with pytest.raises(RefNotFound, match=r"bronze\.flights has no tag or branch 'yesterday'"):
        rollback.rollback(catalog, REGISTRY, BRONZE_FLIGHTS, AsOf(ref="yesterday"), force=True)

    assert table_state(catalog, BRONZE_FLIGHTS) == before
