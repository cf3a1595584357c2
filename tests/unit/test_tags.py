"""lakeops.tags and the build gate: last-known-good moves forward only, and only when a build earned it."""

import pandas as pd
import pytest
from pyiceberg.expressions import AlwaysFalse
from pyiceberg.table.update.snapshot import ManageSnapshots

from lakeops.build import pipeline
from lakeops.datasets.windows import Window
from lakeops.errors import ValidationFailed
from lakeops.iceberg import commits, lake, tags
from lakeops.iceberg.provenance import Provenance
from lakeops.iceberg.transactions import Transaction

from .conftest import DAY_A, DAY_B
from .flights import BRONZE_FLIGHTS, GOLD_DAILY_DELAYS, SILVER_FLIGHTS, build_gold, build_silver, ingest_bronze
from .versioning_helpers import (
    RUN,
    Recorder,
    build_day,
    current_id,
    dropper,
    failing,
    open_lake,
    passing,
    rows_of,
    snapshot_ids,
)

VALIDATED = pipeline.Target(validate=passing)


def good(catalog, ref) -> int | None:
    snapshot = tags.last_known_good(catalog.load_table(ref.identifier))
    return snapshot.snapshot_id if snapshot else None


def test_ingest_always_marks_bronze_good(catalog, drop_day):
    first = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    assert good(catalog, BRONZE_FLIGHTS) == first

    second = ingest_bronze(catalog, drop_day(DAY_B), RUN).snapshot_id

    assert second != first
    assert good(catalog, BRONZE_FLIGHTS) == second
    assert tags.tags(catalog.load_table(BRONZE_FLIGHTS.identifier)) == {tags.LAST_KNOWN_GOOD: second}


def test_a_commit_moves_last_known_good_in_the_same_metadata_commit(catalog, drop_day):
    ingest_bronze(catalog, drop_day(DAY_A), RUN)
    before = len(catalog.load_table(BRONZE_FLIGHTS.identifier).metadata.metadata_log)

    b = ingest_bronze(catalog, drop_day(DAY_B), RUN).snapshot_id

    table = catalog.load_table(BRONZE_FLIGHTS.identifier)
    assert good(catalog, BRONZE_FLIGHTS) == b
    assert len(table.metadata.metadata_log) == before + 1  # one catalog commit: the snapshot and its tag


def test_a_tag_moved_by_hand_meanwhile_is_a_lost_race_retried_and_the_tag_ends_on_the_new_commit(catalog, drop_day):
    a = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    b = ingest_bronze(catalog, drop_day(DAY_B), RUN).snapshot_id
    stale = catalog.load_table(BRONZE_FLIGHTS.identifier)  # its view: main and last-known-good at b
    catalog.load_table(BRONZE_FLIGHTS.identifier).manage_snapshots().create_tag(a, tags.LAST_KNOWN_GOOD).commit()
    retries = commits.COUNTS.retries

    made = Provenance("test", "run-2", DAY_B.isoformat(), "batch-2", validated=True)
    again = stale.scan(snapshot_id=a).to_arrow()  # any rows: the commit is what is under test
    committed = lake.replace_rows(stale, again, AlwaysFalse(), made, tag=tags.LAST_KNOWN_GOOD)

    assert commits.COUNTS.retries == retries + 1  # main had not moved: the tag's compare-and-swap failed once
    assert committed not in (a, b)
    assert good(catalog, BRONZE_FLIGHTS) == committed


def test_a_transaction_computes_its_staged_metadata_once_per_state(catalog, drop_day):
    a = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    tx = Transaction(catalog.load_table(BRONZE_FLIGHTS.identifier))

    first = tx.table_metadata
    assert tx.table_metadata is first  # read again: the same state, not another deep copy
    ManageSnapshots(transaction=tx).create_tag(a, "kept").commit()
    staged = tx.table_metadata
    assert staged is not first and staged.refs["kept"].snapshot_id == a  # a staged update is seen
    assert "kept" not in first.refs
    tx.commit_transaction()
    assert catalog.load_table(BRONZE_FLIGHTS.identifier).snapshot_by_name("kept").snapshot_id == a


def test_a_validated_build_on_main_moves_last_known_good_to_its_commit(catalog, drop_day):
    first = build_day(catalog, drop_day, DAY_A, target=VALIDATED)
    assert (good(catalog, SILVER_FLIGHTS), good(catalog, GOLD_DAILY_DELAYS)) == (
        first.silver.snapshot_id,
        first.gold.snapshot_id,
    )

    unvalidated = build_day(catalog, drop_day, DAY_B)  # committed, current, but not proven good

    assert current_id(catalog, SILVER_FLIGHTS) == unvalidated.silver.snapshot_id
    assert good(catalog, SILVER_FLIGHTS) == first.silver.snapshot_id
    assert good(catalog, GOLD_DAILY_DELAYS) == first.gold.snapshot_id


def test_a_stale_build_does_not_move_last_known_good_even_when_valid(catalog, drop_day):
    first = build_day(catalog, drop_day, DAY_A, target=VALIDATED)
    bronze = ingest_bronze(catalog, drop_day(DAY_B), RUN)

    stale = build_silver(catalog, Window(DAY_B), bronze.snapshot_id, RUN, stale=True, target=VALIDATED)

    assert stale.stale is True
    assert current_id(catalog, SILVER_FLIGHTS) == stale.snapshot_id
    assert good(catalog, SILVER_FLIGHTS) == first.silver.snapshot_id


def test_a_valid_build_on_a_branch_does_not_move_last_known_good(catalog, drop_day):
    first = build_day(catalog, drop_day, DAY_A, target=VALIDATED)
    silver = catalog.load_table(SILVER_FLIGHTS.identifier)
    silver.manage_snapshots().create_branch(first.silver.snapshot_id, "audit").commit()

    on_branch = build_silver(
        catalog,
        Window(DAY_A),
        first.bronze.snapshot_id,
        RUN,
        target=pipeline.Target(branch="audit", validate=passing),
    )

    silver = catalog.load_table(SILVER_FLIGHTS.identifier)
    assert silver.snapshot_by_name("audit").snapshot_id == on_branch.snapshot_id
    assert current_id(catalog, SILVER_FLIGHTS) == first.silver.snapshot_id
    assert good(catalog, SILVER_FLIGHTS) == first.silver.snapshot_id


@pytest.fixture(scope="module")
def validated_day(tmp_path_factory):
    """Day A built and validated; shared by the tests that must leave it untouched."""
    home = tmp_path_factory.mktemp("tags")
    catalog = open_lake(home / "lake")
    return catalog, build_day(catalog, dropper(home / "landing"), DAY_A, target=VALIDATED)


@pytest.mark.parametrize("ref", [SILVER_FLIGHTS, GOLD_DAILY_DELAYS], ids=str)
def test_a_failing_validator_raises_and_commits_nothing(validated_day, ref):
    catalog, first = validated_day
    before = (snapshot_ids(catalog, ref), good(catalog, ref), rows_of(catalog, ref))
    assert before[1] == current_id(catalog, ref)
    gate = pipeline.Target(validate=failing)

    with pytest.raises(ValidationFailed, match=rf"{ref} window 2013-01-02 failed 1 of 3 checks") as caught:
        if ref == SILVER_FLIGHTS:
            build_silver(catalog, Window(DAY_A), first.bronze.snapshot_id, RUN, version="v2", target=gate)
        else:
            build_gold(catalog, Window(DAY_A), first.silver.snapshot_id, RUN, version="v2", target=gate)

    assert caught.value.failures == ("fake_check(column='x'): 2 rows",)
    assert "fake_check(column='x')" in str(caught.value) and "nothing committed" in str(caught.value)
    assert f"main stays at {before[1]}, last-known-good at {before[1]}" in str(caught.value)
    after = (snapshot_ids(catalog, ref), good(catalog, ref), rows_of(catalog, ref))
    assert after[:2] == before[:2]
    pd.testing.assert_frame_equal(after[2], before[2])


def test_the_validator_sees_exactly_the_rows_then_committed(catalog, drop_day):
    recorder = Recorder()

    built = build_day(catalog, drop_day, DAY_A, target=pipeline.Target(validate=recorder))

    assert [ref for ref, _ in recorder.seen] == [SILVER_FLIGHTS, GOLD_DAILY_DELAYS]
    (_, silver_frame), (_, gold_frame) = recorder.seen
    assert set(silver_frame["_bronze_snapshot_id"]) == {built.bronze.snapshot_id}
    for audited, ref in ((silver_frame, SILVER_FLIGHTS), (gold_frame, GOLD_DAILY_DELAYS)):
        committed = rows_of(catalog, ref)  # as a reader of the table reads them
        key = list(committed.columns)
        pd.testing.assert_frame_equal(
            audited.sort_values(key).reset_index(drop=True), committed.sort_values(key).reset_index(drop=True)
        )
