"""lakeops.replay: re-run a transform version into a branch, from the Bronze snapshots Silver recorded."""

from collections import Counter
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pytest
from pyiceberg.table.snapshots import ancestors_of

from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.build.validation import ValidationReport
from lakeops.datasets.declaration import Layer
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import Window
from lakeops.errors import ValidationFailed
from lakeops.iceberg import lake
from lakeops.versioning import history, replay

from .conftest import DAY_A, DAY_B, assert_gold_matches
from .flights import BRONZE_FLIGHTS, FLIGHTS, GOLD_DAILY_DELAYS, REGISTRY, SILVER_FLIGHTS, ingest_bronze
from .versioning_helpers import (
    DAY_C,
    RUN,
    Built,
    build_day,
    canonical,
    corrected,
    current_id,
    dropper,
    expected_gold_v2,
    failing,
    on_day,
    open_lake,
    passing,
    rows_of,
    rows_on,
    snapshot_ids,
)

LAYERS = (SILVER_FLIGHTS, GOLD_DAILY_DELAYS)
DAYS = (DAY_A, DAY_B, DAY_C)
WINDOWS = tuple(Window(d) for d in DAYS)


def plan_flights(catalog, version: str, **kwargs) -> replay.ReplayPlan:
    """Plan a replay of the flights dataset."""
    return replay.plan(catalog, REGISTRY, FLIGHTS.name, version, **kwargs)


def replay_flights(catalog, planned: replay.ReplayPlan, run_info: pipeline.RunInfo, **kwargs) -> replay.ReplayResult:
    return replay.run(catalog, REGISTRY, planned, run_info, **kwargs)


def bronze_source(window: Window, snapshot_id: int, recorded: bool) -> replay.WindowSource:
    return replay.WindowSource(window, {"flights.bronze": snapshot_id}, recorded)


def replay_writes(catalog, ref: TableRef, branch: str) -> Counter:
    """How many times each window was written by a replay on `branch` (one snapshot per window write)."""
    table = catalog.load_table(ref.identifier)
    head = lake.head(table, branch)
    count: Counter = Counter()
    for snapshot in ancestors_of(head, table.metadata):
        made = lake.provenance_of(snapshot)
        if made and made.operation == replay.OPERATION:
            count[made.window] += 1
    return count


def all_refs(catalog) -> dict[str, dict[str, int]]:
    return {
        str(ref): {name: r.snapshot_id for name, r in catalog.load_table(ref.identifier).metadata.refs.items()}
        for ref in (BRONZE_FLIGHTS, *LAYERS)
    }


@dataclass
class Story:
    catalog: object
    built: dict
    correction: int
    main_before: dict
    v1: replay.ReplayResult
    v1_progress: list
    v2: replay.ReplayResult


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    """A, B (validated) and C built on main; then Bronze A corrected; then replays of v1 and v2."""
    home = tmp_path_factory.mktemp("replay")
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    built = {
        DAY_A: build_day(catalog, drop, DAY_A),
        DAY_B: build_day(catalog, drop, DAY_B, target=pipeline.Target(validate=passing)),
        DAY_C: build_day(catalog, drop, DAY_C),
    }
    # Bronze moves on after Silver was built: latest Bronze is no longer what Silver A was made of.
    correction = ingest_bronze(catalog, drop(DAY_A, corrected(DAY_A)), RUN).snapshot_id
    main_before = {ref: (current_id(catalog, ref), canonical(rows_of(catalog, ref), ref)) for ref in LAYERS}
    progress: list[replay.Progress] = []
    v1 = replay_flights(catalog, plan_flights(catalog, "v1", start=DAY_A), RUN, on_progress=progress.append)
    v2 = replay_flights(catalog, plan_flights(catalog, "v2", start=DAY_A), RUN)
    return Story(catalog, built, correction, main_before, v1, progress, v2)


def test_plan_takes_each_window_from_the_bronze_snapshot_its_silver_recorded(story):
    plan = plan_flights(story.catalog, "v1", start=DAY_A)

    assert plan.branch == "replay-v1"
    assert plan.sources == tuple(bronze_source(Window(d), story.built[d].bronze.snapshot_id, True) for d in DAYS)
    assert story.correction == current_id(story.catalog, BRONZE_FLIGHTS)
    assert story.correction not in {s.inputs["flights.bronze"] for s in plan.sources}


def test_replaying_v1_reproduces_the_published_windows_exactly(story):
    assert story.v1.replayed == WINDOWS and story.v1.skipped == ()
    # Every window was rewritten on the branch, not merely inherited from the fork of main.
    for ref in LAYERS:
        assert replay_writes(story.catalog, ref, "replay-v1") == {w.key: 1 for w in WINDOWS}, ref
        assert set(replay.completed(story.catalog.load_table(ref.identifier), "replay-v1", "v1")) == set(WINDOWS)

    for ref in LAYERS:
        branch = canonical(rows_on(story.catalog, ref, "replay-v1"), ref)
        # All columns, values compared exactly (floats included).
        pd.testing.assert_frame_equal(branch, story.main_before[ref][1], check_exact=True)
    silver = rows_on(story.catalog, SILVER_FLIGHTS, "replay-v1")
    assert not (silver["dep_delay"] == 999.0).any()  # the corrected Bronze was not read
    assert set(on_day(silver, DAY_A)["_bronze_snapshot_id"]) == {story.built[DAY_A].bronze.snapshot_id}


def test_what_consumers_read_on_main_does_not_move(story):
    for ref in LAYERS:
        snapshot_id, rows = story.main_before[ref]
        consumer = story.catalog.load_table(ref.identifier).scan().to_pandas()
        assert current_id(story.catalog, ref) == snapshot_id
        pd.testing.assert_frame_equal(canonical(consumer, ref), rows)
    heads = {
        (ref, r): lake.head(story.catalog.load_table(ref.identifier), r).snapshot_id
        for ref in LAYERS
        for r in ("replay-v1", "replay-v2")
    }
    assert all(head != story.main_before[ref][0] for (ref, _), head in heads.items())


def test_replaying_v2_gives_the_v2_gold_computed_independently(story):
    gold = rows_on(story.catalog, GOLD_DAILY_DELAYS, "replay-v2")
    main_gold = story.main_before[GOLD_DAILY_DELAYS][1]

    for day in DAYS:
        window = canonical(on_day(gold, day), GOLD_DAILY_DELAYS)
        assert_gold_matches(window.drop(columns=["flight_date", "_batch_id"]), expected_gold_v2(landing.day_rows(day)))
        before = canonical(on_day(main_gold, day), GOLD_DAILY_DELAYS)
        assert (window["cancelled"] >= before["cancelled"]).all()
        assert (window["cancelled"] > before["cancelled"]).any(), day  # every one of these days has diversions
        assert window["_batch_id"].tolist() == before["_batch_id"].tolist()
    # v2 changes only the Gold rule: Silver on the v2 branch is the published Silver.
    pd.testing.assert_frame_equal(
        canonical(rows_on(story.catalog, SILVER_FLIGHTS, "replay-v2"), SILVER_FLIGHTS),
        story.main_before[SILVER_FLIGHTS][1],
    )
    assert (
        story.v2.heads[str(GOLD_DAILY_DELAYS)]
        == lake.head(story.catalog.load_table("gold.daily_delays"), "replay-v2").snapshot_id
    )


def test_progress_reports_each_window_done_of_total(story):
    progress = story.v1_progress

    assert [(p.window, p.done, p.total, p.skipped) for p in progress] == [
        (w, i, 3, False) for i, w in enumerate(WINDOWS, start=1)
    ]
    day_rows = [len(landing.day_rows(d)) for d in DAYS]
    assert [p.rows for p in progress] == [sum(day_rows[:i]) for i in (1, 2, 3)]
    assert story.v1.rows == sum(day_rows)
    assert str(progress[0]).startswith("1/3 windows: 2013-01-02 replayed; 943 rows in ")


def test_history_shows_replay_commits_on_the_branch(story):
    entries = history.history(story.catalog.load_table(SILVER_FLIGHTS.identifier))
    head = next(e for e in entries if "replay-v1" in e.refs)

    assert head.snapshot_id == story.v1.heads[str(SILVER_FLIGHTS)]
    assert (head.made_by.operation, head.made_by.branch, head.made_by.transform_version) == (
        "replay",
        "replay-v1",
        "v1",
    )
    assert dict(head.made_by.inputs) == {"bronze.flights": story.built[DAY_C].bronze.snapshot_id}
    assert head.made_by.validated is False


def test_a_rerun_skips_every_window_and_commits_nothing(story):
    refs, snapshots = all_refs(story.catalog), {ref: snapshot_ids(story.catalog, ref) for ref in LAYERS}
    progress: list[replay.Progress] = []

    again = replay_flights(
        story.catalog, plan_flights(story.catalog, "v1", start=DAY_A), RUN, on_progress=progress.append
    )

    assert again.replayed == () and again.skipped == WINDOWS
    assert (again.heads[str(SILVER_FLIGHTS)], again.heads[str(GOLD_DAILY_DELAYS)]) == (
        story.v1.heads[str(SILVER_FLIGHTS)],
        story.v1.heads[str(GOLD_DAILY_DELAYS)],
    )
    assert again.rows == 0
    assert all_refs(story.catalog) == refs
    assert {ref: snapshot_ids(story.catalog, ref) for ref in LAYERS} == snapshots
    assert [(p.done, p.skipped) for p in progress] == [(1, True), (2, True), (3, True)]
    assert "already replayed, skipped" in str(progress[0])


def test_default_start_is_the_window_of_silvers_last_known_good(story):
    assert plan_flights(story.catalog, "v1").windows == (Window(DAY_B), Window(DAY_C))
    assert plan_flights(story.catalog, "v1", start=DAY_A).windows == WINDOWS
    plan = plan_flights(story.catalog, "v2", start=DAY_A, end=DAY_B, branch="try-1")
    assert (plan.windows, plan.branch, plan.version) == (WINDOWS[:2], "try-1", "v2")


def test_impossible_requests_raise_value_error_and_create_nothing(story):
    refs = all_refs(story.catalog)

    with pytest.raises(ValueError, match=r"unknown transform version 'v9'"):
        plan_flights(story.catalog, "v9")
    with pytest.raises(ValueError, match=r"start 2013-01-03 is after end 2013-01-02"):
        plan_flights(story.catalog, "v1", start=DAY_B, end=DAY_A)

    assert all_refs(story.catalog) == refs


def test_a_window_only_in_bronze_is_planned_from_bronze_head(catalog, drop_day):
    head = ingest_bronze(catalog, drop_day(DAY_A), RUN).snapshot_id

    plan = plan_flights(catalog, "v2")

    assert plan.sources == (bronze_source(Window(DAY_A), head, False),)


def test_a_crash_between_silver_and_gold_resumes_without_redoing_or_duplicating(catalog, drop_day):
    for day in (DAY_A, DAY_B):
        build_day(catalog, drop_day, day)

    def gold_of_b_fails(layer: Layer, frame: pa.Table) -> ValidationReport:
        hit = layer.table == GOLD_DAILY_DELAYS and set(frame["flight_date"].to_pylist()) == {DAY_B}
        return failing(layer, frame) if hit else passing(layer, frame)

    with pytest.raises(ValidationFailed):
        replay_flights(catalog, plan_flights(catalog, "v2"), RUN, validate=gold_of_b_fails)
    silver_table = catalog.load_table(SILVER_FLIGHTS.identifier)
    silver_b = replay.completed(silver_table, "replay-v2", "v2")[Window(DAY_B)]
    assert set(replay.completed(catalog.load_table(GOLD_DAILY_DELAYS.identifier), "replay-v2", "v2")) == {Window(DAY_A)}

    result = replay_flights(catalog, plan_flights(catalog, "v2"), RUN)

    assert (result.replayed, result.skipped) == ((Window(DAY_B),), (Window(DAY_A),))
    assert result.rows == 0  # no Silver window was rebuilt
    assert replay.completed(catalog.load_table(SILVER_FLIGHTS.identifier), "replay-v2", "v2")[Window(DAY_B)] == silver_b
    for ref in LAYERS:
        assert replay_writes(catalog, ref, "replay-v2") == {"2013-01-02": 1, "2013-01-03": 1}, ref
    gold = rows_on(catalog, GOLD_DAILY_DELAYS, "replay-v2")
    assert dict(Counter(gold["flight_date"])) == {DAY_A: 3, DAY_B: 3}
    assert_gold_matches(
        canonical(on_day(gold, DAY_B), GOLD_DAILY_DELAYS).drop(columns=["flight_date", "_batch_id"]),
        expected_gold_v2(landing.day_rows(DAY_B)),
    )


def test_a_window_republished_on_main_since_the_replay_is_replayed_again(catalog, drop_day):
    for day in (DAY_A, DAY_B):
        build_day(catalog, drop_day, day)
    replay_flights(catalog, plan_flights(catalog, "v1"), RUN)
    fixed: Built = build_day(catalog, drop_day, DAY_A, text=corrected(DAY_A))  # main now holds corrected A

    result = replay_flights(catalog, plan_flights(catalog, "v1"), RUN)

    assert (result.replayed, result.skipped) == ((Window(DAY_A),), (Window(DAY_B),))
    silver = rows_on(catalog, SILVER_FLIGHTS, "replay-v1")
    assert set(on_day(silver, DAY_A)["_bronze_snapshot_id"]) == {fixed.bronze.snapshot_id}
    assert (on_day(silver, DAY_A)["dep_delay"] == 999.0).sum() == 1
    assert len(on_day(silver, DAY_A)) == len(landing.day_rows(DAY_A))
    for ref in LAYERS:
        assert replay_writes(catalog, ref, "replay-v1") == {"2013-01-02": 2, "2013-01-03": 1}, ref
        pd.testing.assert_frame_equal(
            canonical(rows_on(catalog, ref, "replay-v1"), ref), canonical(rows_of(catalog, ref), ref)
        )
