"""lakeops.release: pin the input, build both colours on branches, compare them; and the release report."""

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import DataScan
from pyiceberg.table.snapshots import ancestors_of

from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.release import blue_green, release_report, release_suite
from lakeops.release.blue_green import BLUE, BUILD_OPERATION, GREEN, ReleasePlan
from lakeops.release.comparison import Thresholds, Verdict
from lakeops.versioning import replay

from .conftest import DAY_A, DAY_B
from .flights import BRONZE_FLIGHTS, FLIGHTS, GOLD_DAILY_DELAYS, REGISTRY, SILVER_FLIGHTS, ingest_bronze
from .release_helpers import (
    LOOSE,
    TABLES,
    built,
    built_lake,
    colour_print,
    head_of,
    main_ids,
    pinned,
    table_print,
    v2_changes,
)
from .versioning_helpers import DAY_C, RUN, Built, corrected, current_id, on_day, rows_on

DAYS = (DAY_A, DAY_B, DAY_C)
WINDOWS = tuple(Window(d) for d in DAYS)
COLOURS = (BLUE, GREEN)


def pinned_bronze(planned: ReleasePlan) -> dict[str, int]:
    """Window -> the Bronze snapshot the release pinned for it."""
    return {window: inputs["flights.bronze"] for window, inputs in planned.pinned.items()}


@dataclass(frozen=True)
class Story:
    catalog: Catalog
    built: dict[date, Built]
    main: dict[str, int]
    correction: int
    same: ReleasePlan  # v1 -> v1.1, a refactor
    v2: ReleasePlan  # v1 -> v2, diverted flights count as cancelled


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    """Three days on main (v1); two releases pinned; then Bronze A corrected; then both releases built."""
    catalog, drop, days = built_lake(tmp_path_factory.mktemp("release"), DAYS)
    main = main_ids(catalog)
    same, v2 = pinned(catalog, "v1.1"), pinned(catalog, "v2")
    # The source re-sends day A after the releases pinned their input: the colours must not read it.
    correction = ingest_bronze(catalog, drop(DAY_A, corrected(DAY_A)), RUN).snapshot_id
    for planned in (same, v2):
        for colour in COLOURS:
            blue_green.build(catalog, REGISTRY, planned, colour, RUN)
    return Story(catalog, days, main, correction, same, v2)


# --- plan ---------------------------------------------------------------------------------------


def test_plan_pins_the_bronze_snapshot_each_window_of_silver_records(story):
    planned = blue_green.plan(story.catalog, REGISTRY, FLIGHTS.name, "v2", release_id="r-test")

    assert planned.pinned == {d.isoformat(): {"flights.bronze": story.built[d].bronze.snapshot_id} for d in DAYS}
    assert len(set(pinned_bronze(planned).values())) == 3  # each day came in its own Bronze commit
    assert current_id(story.catalog, BRONZE_FLIGHTS) == story.correction
    assert story.correction not in pinned_bronze(planned).values()
    assert planned.windows == WINDOWS and all(s.recorded for s in planned.sources)
    assert planned.base == story.main == {str(ref): current_id(story.catalog, ref) for ref in TABLES}
    assert (planned.blue_version, planned.green_version) == ("v1", "v2")  # nothing live: the default version
    assert (planned.branch(BLUE), planned.branch(GREEN)) == ("release-r-test-blue", "release-r-test-green")


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [(DAY_B, None, (DAY_B, DAY_C)), (None, DAY_B, (DAY_A, DAY_B)), (DAY_B, DAY_B, (DAY_B,))],
)
def test_plan_keeps_the_windows_in_range(story, start, end, days):
    planned = blue_green.plan(story.catalog, REGISTRY, FLIGHTS.name, "v2", start=start, end=end)

    assert planned.windows == tuple(Window(d) for d in days)
    assert planned.pinned == {d.isoformat(): {"flights.bronze": story.built[d].bronze.snapshot_id} for d in days}


@pytest.mark.parametrize(
    ("dataset", "green", "blue", "start", "end", "message"),
    [
        ("bookings", "v2", None, None, None, "unknown dataset 'bookings'"),
        (FLIGHTS.name, "v9", None, None, None, "unknown transform version 'v9'"),
        (FLIGHTS.name, "v2", "v0", None, None, "unknown transform version 'v0'"),
        (FLIGHTS.name, "v1", None, None, None, "same transform version 'v1'"),  # blue defaults to v1
        (FLIGHTS.name, "v2", "v2", None, None, "same transform version 'v2'"),
        (FLIGHTS.name, "v2", None, date(2013, 2, 1), None, "no window"),
        (FLIGHTS.name, "v2", None, DAY_C, DAY_A, "no window"),
    ],
)
def test_plan_refuses_what_cannot_be_released(story, dataset, green, blue, start, end, message):
    with pytest.raises(ValueError, match=message):
        blue_green.plan(story.catalog, REGISTRY, dataset, green, blue, start, end)


def test_plan_refuses_a_lake_with_nothing_published(catalog):
    with pytest.raises(ValueError, match="no window"):
        blue_green.plan(catalog, REGISTRY, FLIGHTS.name, "v2")


def test_compare_refuses_colours_not_built_yet(story):
    planned = blue_green.plan(story.catalog, REGISTRY, FLIGHTS.name, "v2")

    with pytest.raises(ValueError, match="build the colours first"):
        blue_green.compare(story.catalog, REGISTRY, planned, Thresholds(), None)


# --- build --------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["same", "v2"])
@pytest.mark.parametrize("colour", COLOURS)
def test_each_colour_is_built_window_by_window_on_its_own_branch(story, which, colour):
    planned: ReleasePlan = getattr(story, which)
    branch = planned.branch(colour)
    for ref in TABLES:
        table = story.catalog.load_table(ref.identifier)
        done = replay.completed(table, branch, planned.version(colour), BUILD_OPERATION)
        assert set(done) == set(WINDOWS), ref
        assert lake.head(table, branch).snapshot_id not in story.main.values()


def test_main_of_each_table_does_not_move_while_the_colours_are_built(story):
    for ref in TABLES:
        table = story.catalog.load_table(ref.identifier)
        assert table.current_snapshot().snapshot_id == story.main[str(ref)]
        assert table_print(story.catalog, ref) == table_print(story.catalog, ref, story.main[str(ref)])
    gold = story.catalog.load_table(GOLD_DAILY_DELAYS.identifier).scan().to_pandas()
    changes = v2_changes(DAYS)
    for (day, origin), (v1_cancelled, _) in changes.items():
        row = gold[(gold["flight_date"].astype(str) == day) & (gold["origin"] == origin)]
        assert row["cancelled"].tolist() == [v1_cancelled]  # consumers still read blue


@pytest.mark.parametrize("which", ["same", "v2"])
@pytest.mark.parametrize("colour", COLOURS)
def test_colours_read_the_pinned_bronze_not_the_batch_that_came_after(story, which, colour):
    planned: ReleasePlan = getattr(story, which)
    branch = planned.branch(colour)
    silver = story.catalog.load_table(SILVER_FLIGHTS.identifier)
    inputs = {}
    for snapshot in ancestors_of(silver.snapshot_by_name(branch), silver.metadata):
        made = lake.provenance_of(snapshot)
        if made and made.operation == BUILD_OPERATION:
            inputs[made.window] = made.inputs[BRONZE_FLIGHTS.identifier]
    assert inputs == pinned_bronze(planned)

    rows = rows_on(story.catalog, SILVER_FLIGHTS, branch)
    for day in DAYS:
        assert set(on_day(rows, day)["_bronze_snapshot_id"]) == {pinned_bronze(planned)[day.isoformat()]}
    assert not (rows["dep_delay"] == 999.0).any()  # the corrected delay exists only in the newer Bronze batch


def test_building_the_colours_concurrently_gives_what_building_them_in_turn_gives(story):
    planned = pinned(story.catalog, "v2", release_id="concurrent")
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(blue_green.build, story.catalog, REGISTRY, planned, colour, RUN) for colour in COLOURS]
        results = [future.result() for future in futures]

    assert [r.replayed for r in results] == [WINDOWS, WINDOWS]
    for ref in TABLES:
        for colour in COLOURS:
            together = colour_print(story.catalog, ref, planned, colour)
            assert together == colour_print(story.catalog, ref, story.v2, colour), (ref, colour)
    assert colour_print(story.catalog, GOLD_DAILY_DELAYS, planned, BLUE) != colour_print(
        story.catalog, GOLD_DAILY_DELAYS, planned, GREEN
    )


def test_building_a_colour_again_resumes_and_commits_nothing(story):
    heads = {ref: current_id(story.catalog, ref) for ref in TABLES}
    branch_heads = {ref: colour_print(story.catalog, ref, story.v2, GREEN) for ref in TABLES}

    blue_green.fork(story.catalog, story.v2)  # a rerun keeps the branches it finds
    again = blue_green.build(story.catalog, REGISTRY, story.v2, GREEN, RUN)

    assert again.replayed == () and again.skipped == WINDOWS
    assert {ref: current_id(story.catalog, ref) for ref in TABLES} == heads
    assert {ref: colour_print(story.catalog, ref, story.v2, GREEN) for ref in TABLES} == branch_heads


def test_a_release_over_a_range_builds_and_compares_only_its_windows(story):
    planned = built(story.catalog, "v2", start=DAY_B)

    gold = blue_green.compare(story.catalog, REGISTRY, planned, Thresholds(), None).tables[1]

    silver = story.catalog.load_table(SILVER_FLIGHTS.identifier)
    assert set(replay.completed(silver, planned.branch(GREEN), "v2", BUILD_OPERATION)) == {Window(DAY_B), WINDOWS[2]}
    assert gold.blue.rows == gold.green.rows == 2 * 3
    assert gold.diff.changed == len(v2_changes((DAY_B, DAY_C)))


# --- compare ------------------------------------------------------------------------------------


def test_a_refactor_compares_identical_without_computing_a_diff(story):
    asked = []

    def suite(*args):
        asked.append(args)
        raise AssertionError("identical fingerprints need no suite")

    comparison = blue_green.compare(story.catalog, REGISTRY, story.same, Thresholds(), suite)

    assert comparison.verdict is Verdict.IDENTICAL and comparison.promotable
    assert [t.table for t in comparison.tables] == [str(ref) for ref in TABLES]
    for t in comparison.tables:
        assert t.verdict is Verdict.IDENTICAL and t.blue == t.green
        assert (t.diff, t.suite, t.breaches) == (None, None, ())
    assert asked == [] and comparison.sample() == []


def test_v2_changes_exactly_the_gold_rows_whose_cancelled_count_differs(story):
    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, Thresholds(), None)
    silver, gold = comparison.tables
    changes = v2_changes(DAYS)

    assert silver.verdict is Verdict.IDENTICAL and silver.diff is None
    assert gold.verdict is Verdict.OUTSIDE and comparison.verdict is Verdict.OUTSIDE
    assert not comparison.promotable
    assert 0 < gold.diff.changed == len(changes) < gold.diff.rows_blue == 3 * 3
    assert (gold.diff.only_blue, gold.diff.only_green) == (0, 0)
    assert {c.column for c in gold.diff.columns if c.match_rate < 1} == {"cancelled"}
    assert gold.breaches == (f"{len(changes)} rows changed ({len(changes) / 9:.2%} > 0.00%)",)
    sample = comparison.sample()
    assert len(sample) == len(changes)
    for row in sample:
        assert row["table"] == str(GOLD_DAILY_DELAYS) and row["side"] == "changed"
        assert changes[(row["flight_date"], row["origin"])] == (row["cancelled.blue"], row["cancelled.green"])
        assert {k for k in row if "." in k} == {"cancelled.blue", "cancelled.green"}


def test_v2_within_loose_thresholds_passes_the_suite_built_from_blue(story):
    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, LOOSE, release_suite.check)
    silver, gold = comparison.tables

    assert (silver.verdict, gold.verdict, comparison.verdict) == (Verdict.IDENTICAL, Verdict.WITHIN, Verdict.WITHIN)
    assert comparison.promotable
    assert gold.suite.success and gold.suite.evaluated > 0 and gold.breaches == ()
    assert silver.suite is None  # identical tables are never sent to the suite


def test_a_suite_failure_alone_puts_green_outside(story):
    strict_means = Thresholds(max_changed_fraction=1.0, mean_tolerance=1e-6)
    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, strict_means, release_suite.check)
    gold = comparison.tables[1]

    assert strict_means.breaches(gold.diff) == ()  # the diff alone is within thresholds
    assert gold.verdict is Verdict.OUTSIDE and not comparison.promotable
    assert gold.breaches and all(b.startswith("suite: ") for b in gold.breaches)
    assert all("column='cancelled'" in b for b in gold.breaches)  # the only column whose values moved


def test_the_summary_is_plain_json(story):
    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, LOOSE, release_suite.check)
    summary = comparison.summary()

    gold = json.loads(json.dumps(summary, allow_nan=False))[str(GOLD_DAILY_DELAYS)]
    assert json.loads(json.dumps(comparison.sample(), allow_nan=False)) == comparison.sample()
    assert gold["verdict"] == "within thresholds" and gold["diff"]["changed"] == len(v2_changes(DAYS))
    assert "sample" not in gold["diff"] and gold["suite"]["failures"] == []
    assert gold["green_snapshot_id"] == head_of(story.catalog, GOLD_DAILY_DELAYS, story.v2.branch(GREEN))
    assert gold["diff"]["key"] == ["flight_date", "origin"]
    assert summary[str(SILVER_FLIGHTS)]["diff"] is None and summary[str(SILVER_FLIGHTS)]["rows_blue"] == 2772


# --- report -------------------------------------------------------------------------------------


def test_the_report_has_the_verdict_one_row_per_table_and_the_sample(story):
    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, Thresholds(), None)
    changed = len(v2_changes(DAYS))

    rows = release_report.table_rows(comparison)
    text = release_report.markdown(story.v2, comparison)

    assert [r["table"] for r in rows] == [str(ref) for ref in TABLES]
    assert rows[1] | {"lowest match rate": ""} == {
        "table": "gold.daily_delays",
        "verdict": "outside thresholds",
        "rows blue": 9,
        "rows green": 9,
        "only blue": 0,
        "only green": 0,
        "changed": changed,
        "lowest match rate": "",
        "suite failures": 0,
    }
    assert rows[1]["lowest match rate"].startswith("cancelled ")
    assert f"**{Verdict.OUTSIDE}**" in text and story.v2.release_id in text
    assert "| silver.flights | identical | 2772 | 2772 | 0 | 0 | 0 |" in text
    assert f"| gold.daily_delays | outside thresholds | 9 | 9 | 0 | 0 | {changed} |" in text
    assert "Sample of mismatching rows:" in text
    sample_header = next(line for line in text.splitlines() if "cancelled.blue" in line)
    assert sample_header.startswith("| table | flight_date | origin |")
    assert sum(line.startswith("| gold.daily_delays | 2013-") for line in text.splitlines()) == changed


def test_the_report_of_an_identical_release_has_no_sample(story):
    comparison = blue_green.compare(story.catalog, REGISTRY, story.same, Thresholds(), None)

    text = release_report.markdown(story.same, comparison)

    assert f"**{Verdict.IDENTICAL}**" in text and "Sample" not in text
    assert [r["changed"] for r in release_report.table_rows(comparison)] == [0, 0]


def test_a_comparison_over_some_windows_covers_only_them_and_its_report_says_they_were_caught_up(story):
    day_b = (WINDOWS[1],)

    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, Thresholds(), None, day_b)
    text = release_report.markdown(story.v2, comparison)

    gold = comparison.tables[1]
    assert comparison.windows == day_b and gold.blue.rows == gold.green.rows == 3
    assert gold.diff.changed == len(v2_changes((DAY_B,)))
    assert "windows 2013-01-03..2013-01-03 (1), caught up (main gained them while the release ran)" in text
    every = blue_green.compare(story.catalog, REGISTRY, story.v2, Thresholds(), None)
    assert every.windows == WINDOWS and "caught up" not in release_report.markdown(story.v2, every)
    with pytest.raises(ValueError, match="no window to compare"):
        blue_green.compare(story.catalog, REGISTRY, story.v2, Thresholds(), None, ())


def test_the_colours_are_read_one_window_at_a_time_and_add_up_to_the_whole_table(story, monkeypatch):
    read: list[int] = []
    to_arrow = DataScan.to_arrow

    def counted(scan: DataScan):  # noqa: ANN202
        rows = to_arrow(scan)
        read.append(rows.num_rows)
        return rows

    monkeypatch.setattr(DataScan, "to_arrow", counted)
    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, Thresholds(), None)
    monkeypatch.undo()

    assert len(read) == len(TABLES) * len(COLOURS) * len(WINDOWS)  # each table, colour and window once
    per_table = len(COLOURS) * len(WINDOWS)
    for i, (t, ref) in enumerate(zip(comparison.tables, TABLES, strict=True)):
        whole = {c: table_print(story.catalog, ref, head_of(story.catalog, ref, story.v2.branch(c))) for c in COLOURS}
        assert (t.blue, t.green) == (whole[BLUE], whole[GREEN])
        assert max(read[i * per_table : (i + 1) * per_table]) < t.blue.rows  # no read held the table whole
    gold = comparison.tables[1]
    assert gold.diff.rows_blue == gold.blue.rows  # identical windows count in the diff's rows
    assert all(c.compared == gold.diff.rows_blue for c in gold.diff.columns)


def test_a_suite_failure_names_the_window_it_was_found_in(story):
    strict_means = Thresholds(max_changed_fraction=1.0, mean_tolerance=1e-6)
    comparison = blue_green.compare(story.catalog, REGISTRY, story.v2, strict_means, release_suite.check)
    changed = {str(Window(date.fromisoformat(day))) for day, _ in v2_changes(DAYS)}

    failures = comparison.tables[1].suite.failures
    assert failures and {f.split(": ", 1)[0] for f in failures} <= changed
