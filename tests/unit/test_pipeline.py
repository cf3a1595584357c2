"""lakeops.pipeline: Bronze ingest, quarantine, Silver and Gold builds against a real catalog."""

import pandas as pd
import pytest

from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.datasets.windows import Window
from lakeops.errors import EmptyWindow, MalformedBatch
from lakeops.iceberg import lake

from .conftest import DAY_A, DAY_B, assert_gold_matches, day_text, edit_cell, expected_gold
from .flights import (
    BRONZE_FLIGHTS,
    GOLD_DAILY_DELAYS,
    QUARANTINE_FLIGHTS,
    SILVER_FLIGHTS,
    build_gold,
    build_silver,
    ingest_bronze,
    quarantine,
)

# pyiceberg warns when an overwrite's filter matches nothing, as on every window's first commit
pytestmark = pytest.mark.filterwarnings("ignore:Delete operation did not match any records")

RUN = pipeline.RunInfo("run-1", "test")
KEY = ["year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"]


def rows_of(catalog, ref, snapshot_id=None) -> pd.DataFrame:
    """The whole table as of a snapshot, read with pyiceberg directly."""
    return catalog.load_table(ref.identifier).scan(snapshot_id=snapshot_id).to_pandas()


def bronze_day(catalog, day, snapshot_id=None) -> pd.DataFrame:
    rows = rows_of(catalog, BRONZE_FLIGHTS, snapshot_id)
    return rows[(rows["year"] == day.year) & (rows["month"] == day.month) & (rows["day"] == day.day)]


def dated(catalog, ref, day) -> pd.DataFrame:
    rows = rows_of(catalog, ref)
    return rows[rows["flight_date"] == day]


def snapshots(catalog, ref) -> list[int]:
    return [s.snapshot_id for s in catalog.load_table(ref.identifier).snapshots()]


def summary(catalog, ref, snapshot_id) -> dict[str, str]:
    return catalog.load_table(ref.identifier).snapshot_by_id(snapshot_id).summary.additional_properties


def corrected(day) -> str:
    """The day's file as the source re-sends it: one delay fixed, the last flight withdrawn."""
    text = edit_cell(day_text(day), 1, "dep_delay", "999.0")
    return "\n".join(text.splitlines()[:-1]) + "\n"


def test_ingest_commits_the_day_with_provenance(catalog, drop_day):
    batch = drop_day(DAY_A)

    signal = ingest_bronze(catalog, batch, RUN)

    rows = bronze_day(catalog, DAY_A, signal.snapshot_id)
    assert len(rows) == len(landing.day_rows(DAY_A))
    assert set(rows["_batch_id"]) == {batch.batch_id}
    assert set(rows["_source"]) == {"2013-01-02.csv"}
    props = summary(catalog, BRONZE_FLIGHTS, signal.snapshot_id)
    assert props["lakeops.window"] == "2013-01-02"
    assert props["lakeops.batch-id"] == batch.batch_id
    assert props["lakeops.flow-run-id"] == "run-1"
    assert props["lakeops.code-version"] == "test"


def test_reingesting_the_same_bytes_commits_nothing(catalog, drop_day):
    first = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    before = snapshots(catalog, BRONZE_FLIGHTS)

    again = ingest_bronze(catalog, drop_day(DAY_A), pipeline.RunInfo("run-2", "test"))

    assert snapshots(catalog, BRONZE_FLIGHTS) == before
    assert again.snapshot_id == first.snapshot_id
    rows = bronze_day(catalog, DAY_A)
    assert len(rows) == len(landing.day_rows(DAY_A))
    assert not rows.duplicated(KEY).any()


def test_a_corrected_file_replaces_its_window_and_no_other(catalog, drop_day):
    ingest_bronze(catalog, drop_day(DAY_B), RUN)
    ingest_bronze(catalog, drop_day(DAY_A), RUN)
    other_before = bronze_day(catalog, DAY_B).sort_values(KEY).reset_index(drop=True)
    fixed = drop_day(DAY_A, corrected(DAY_A))

    signal = ingest_bronze(catalog, fixed, RUN)

    rows = bronze_day(catalog, DAY_A)
    assert len(rows) == len(landing.day_rows(DAY_A)) - 1
    assert not rows.duplicated(KEY).any()
    assert set(rows["_batch_id"]) == {fixed.batch_id}
    assert (rows["dep_delay"] == 999.0).sum() == 1
    other_after = bronze_day(catalog, DAY_B).sort_values(KEY).reset_index(drop=True)
    pd.testing.assert_frame_equal(other_after, other_before)
    assert signal.row_count == len(rows)


def test_a_malformed_file_commits_nothing_to_bronze(catalog, drop_day):
    good = drop_day(DAY_A)
    ingest_bronze(catalog, good, RUN)
    before = snapshots(catalog, BRONZE_FLIGHTS)

    with pytest.raises(MalformedBatch):
        ingest_bronze(catalog, drop_day(DAY_A, edit_cell(day_text(DAY_A), 3, "dep_delay", "abc")), RUN)

    assert snapshots(catalog, BRONZE_FLIGHTS) == before
    assert set(bronze_day(catalog, DAY_A)["_batch_id"]) == {good.batch_id}


def test_a_malformed_file_into_an_empty_lake_commits_nothing(catalog, drop_day):
    with pytest.raises(MalformedBatch):
        ingest_bronze(catalog, drop_day(DAY_A, "year,month\n2013,1\n"), RUN)

    assert snapshots(catalog, BRONZE_FLIGHTS) == []


def _quarantined(catalog, drop_day, text):
    batch = drop_day(DAY_A, text)
    with pytest.raises(MalformedBatch) as caught:
        ingest_bronze(catalog, batch, RUN)
    return batch, caught.value, quarantine(catalog, batch, caught.value, RUN)


def test_quarantine_keeps_every_raw_line_of_the_rejected_file(catalog, drop_day):
    text = edit_cell(day_text(DAY_A), 3, "dep_delay", "abc")

    batch, error, kept = _quarantined(catalog, drop_day, text)

    lines = text.splitlines()
    rows = rows_of(catalog, QUARANTINE_FLIGHTS).sort_values("line_number")
    assert kept == len(lines) == len(rows)
    assert rows["raw_line"].tolist() == lines
    assert set(rows["batch_id"]) == {batch.batch_id}
    assert set(rows["reason"]) == {str(error)}
    assert set(rows["error_row"]) == {4}


def test_quarantining_the_same_file_twice_keeps_one_copy(catalog, drop_day):
    text = edit_cell(day_text(DAY_A), 3, "dep_delay", "abc")
    batch, error, _ = _quarantined(catalog, drop_day, text)

    quarantine(catalog, batch, error, RUN)

    assert len(rows_of(catalog, QUARANTINE_FLIGHTS)) == len(text.splitlines())


def test_quarantine_of_two_rejected_files_keeps_both(catalog, drop_day):
    _quarantined(catalog, drop_day, edit_cell(day_text(DAY_A), 3, "dep_delay", "abc"))
    _quarantined(catalog, drop_day, "")

    assert rows_of(catalog, QUARANTINE_FLIGHTS)["batch_id"].nunique() == 2


def test_build_silver_reads_exactly_the_given_bronze_snapshot(catalog, drop_day):
    original = drop_day(DAY_A)
    s1 = ingest_bronze(catalog, original, RUN).snapshot_id
    ingest_bronze(catalog, drop_day(DAY_A, corrected(DAY_A)), RUN)

    signal = build_silver(catalog, Window(DAY_A), s1, RUN)

    silver = dated(catalog, SILVER_FLIGHTS, DAY_A)
    assert len(silver) == len(landing.day_rows(DAY_A))
    assert set(silver["_batch_id"]) == {original.batch_id}
    assert not (silver["dep_delay"] == 999.0).any()
    props = summary(catalog, SILVER_FLIGHTS, signal.snapshot_id)
    assert props["lakeops.input.bronze.flights"] == str(s1)
    assert props["lakeops.window"] == "2013-01-02"
    assert props["lakeops.transform-version"] == "v1"


def test_build_silver_twice_leaves_one_copy_and_other_windows_alone(catalog, drop_day):
    ingest_bronze(catalog, drop_day(DAY_B), RUN)
    snapshot_id = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    build_silver(catalog, Window(DAY_B), snapshot_id, RUN)

    build_silver(catalog, Window(DAY_A), snapshot_id, RUN)
    build_silver(catalog, Window(DAY_A), snapshot_id, RUN)

    silver = rows_of(catalog, SILVER_FLIGHTS)
    assert not silver.duplicated(KEY).any()
    assert silver.groupby("flight_date").size().to_dict() == {
        DAY_A: len(landing.day_rows(DAY_A)),
        DAY_B: len(landing.day_rows(DAY_B)),
    }


def test_build_gold_matches_an_independent_computation(catalog, drop_day):
    window = Window(DAY_A)
    bronze = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    silver = build_silver(catalog, window, bronze.snapshot_id, RUN)

    signal = build_gold(catalog, window, silver.snapshot_id, RUN)

    gold = dated(catalog, GOLD_DAILY_DELAYS, DAY_A)
    assert_gold_matches(gold.drop(columns="flight_date"), expected_gold(landing.day_rows(DAY_A)))
    props = summary(catalog, GOLD_DAILY_DELAYS, signal.snapshot_id)
    assert props["lakeops.input.silver.flights"] == str(silver.snapshot_id)


def test_build_gold_twice_leaves_one_copy(catalog, drop_day):
    window = Window(DAY_A)
    bronze = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    silver = build_silver(catalog, window, bronze.snapshot_id, RUN)

    build_gold(catalog, window, silver.snapshot_id, RUN)
    build_gold(catalog, window, silver.snapshot_id, RUN)

    gold = rows_of(catalog, GOLD_DAILY_DELAYS)
    assert sorted(gold["origin"]) == sorted(landing.day_rows(DAY_A)["origin"].unique())


def test_build_silver_of_a_window_missing_from_the_snapshot_raises_empty_window(catalog, drop_day):
    only_a = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id
    ingest_bronze(catalog, drop_day(DAY_B), RUN)  # B arrives after the snapshot asked for
    before = snapshots(catalog, SILVER_FLIGHTS)

    with pytest.raises(EmptyWindow, match="2013-01-03"):
        build_silver(catalog, Window(DAY_B), only_a, RUN)

    assert snapshots(catalog, SILVER_FLIGHTS) == before


def test_build_gold_of_a_window_missing_from_the_snapshot_raises_empty_window(catalog, drop_day):
    bronze = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    silver = build_silver(catalog, Window(DAY_A), bronze.snapshot_id, RUN)

    with pytest.raises(EmptyWindow, match="2013-01-03"):
        build_gold(catalog, Window(DAY_B), silver.snapshot_id, RUN)

    assert snapshots(catalog, GOLD_DAILY_DELAYS) == []


def test_each_signal_names_the_committed_snapshot_its_rows_and_window(catalog, drop_day):
    window = Window(DAY_A)
    bronze = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    silver = build_silver(catalog, window, bronze.snapshot_id, RUN)
    gold = build_gold(catalog, window, silver.snapshot_id, RUN)

    expected_rows = {
        bronze: len(bronze_day(catalog, DAY_A)),
        silver: len(dated(catalog, SILVER_FLIGHTS, DAY_A)),
        gold: len(dated(catalog, GOLD_DAILY_DELAYS, DAY_A)),
    }
    for signal, ref in ((bronze, BRONZE_FLIGHTS), (silver, SILVER_FLIGHTS), (gold, GOLD_DAILY_DELAYS)):
        table = catalog.load_table(ref.identifier)
        assert signal.dataset == ref.identifier
        assert signal.snapshot_id == table.current_snapshot().snapshot_id
        assert signal.row_count == expected_rows[signal]
        assert signal.window == "2013-01-02"
        assert signal.code_version == "test"
        assert signal.stale is False
    assert expected_rows[gold] == landing.day_rows(DAY_A)["origin"].nunique()
    assert expected_rows[bronze] == len(landing.day_rows(DAY_A))


def test_a_stale_build_says_so_in_its_signal_and_summary(catalog, drop_day):
    bronze = ingest_bronze(catalog, drop_day(DAY_A), RUN)

    signal = build_silver(catalog, Window(DAY_A), bronze.snapshot_id, RUN, stale=True)

    assert signal.stale is True
    assert summary(catalog, SILVER_FLIGHTS, signal.snapshot_id)["lakeops.stale"] == "true"


def test_quarantine_commit_carries_the_run_provenance(catalog, drop_day):
    batch, _, _ = _quarantined(catalog, drop_day, edit_cell(day_text(DAY_A), 3, "dep_delay", "abc"))

    made = lake.provenance_of(lake.load(catalog, QUARANTINE_FLIGHTS).current_snapshot())

    assert (made.flow_run_id, made.code_version) == (RUN.flow_run_id, RUN.code_version)
    assert (made.window, made.batch_id) == (DAY_A.isoformat(), batch.batch_id)
