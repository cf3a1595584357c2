"""lakeops.release.catch_up: a release whose base moved builds main's new windows on both colours, then switches."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops import errors
from lakeops.datasets.windows import Window
from lakeops.errors import MainMoved, SwitchFailed
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance
from lakeops.release import blue_green, catch_up, promotion, release_log
from lakeops.release.blue_green import BLUE, GREEN, ReleasePlan
from lakeops.release.comparison import Comparison, Thresholds, Verdict
from lakeops.release.release_log import Event
from lakeops.versioning import maintenance

from .conftest import DAY_A, DAY_B, assert_gold_matches, expected_gold
from .flights import FLIGHTS, GOLD_DAILY_DELAYS, REGISTRY, SILVER_FLIGHTS, build_gold
from .release_helpers import LOOSE, TABLES, built_lake, compared, head_of, main_ids, release_properties
from .versioning_helpers import DAY_C, RUN, Built, build_day, corrected, expected_gold_v2, on_day, rows_of

A, B, C = Window(DAY_A), Window(DAY_B), Window(DAY_C)
STRICT = Thresholds()  # nothing may change: v2's Gold is outside


@dataclass(frozen=True)
class Lake:
    catalog: Catalog
    drop: Callable
    built: dict


@pytest.fixture
def lake_a(tmp_path: Path) -> Lake:
    """Day A on main (v1): what each release here pins; the live pipeline then lands more days."""
    catalog, drop, built = built_lake(tmp_path, (DAY_A,))
    return Lake(catalog, drop, built)


def land(on: Lake, day, text: str | None = None) -> Built:  # noqa: ANN001 - a date
    """The live pipeline: the day's file through Bronze, Silver and Gold on main (v1, the live version)."""
    return build_day(on.catalog, on.drop, day, text)


@dataclass
class Steps:
    """catch_up.Steps as a test runs them: colours in turn, no GX suite, a human who answers from a script."""

    catalog: Catalog
    thresholds: Thresholds = field(default_factory=lambda: LOOSE)
    decisions: list[str | None] = field(default_factory=list)  # each hold's answer: who approves, None rejects
    asked: list[Comparison] = field(default_factory=list)  # what each hold showed
    built: list[tuple[Window, ...]] = field(default_factory=list)
    while_building: list[Callable[[], object]] = field(default_factory=list)  # lands on main during a build
    before_switch: list[Callable[[], object]] = field(default_factory=list)  # lands between look and switch

    def build(self, release: ReleasePlan) -> None:
        if self.while_building:
            self.while_building.pop(0)()
        for colour in (BLUE, GREEN):
            blue_green.build(self.catalog, REGISTRY, release, colour, RUN)
        self.built.append(release.windows)

    def compare(self, release: ReleasePlan, windows: tuple[Window, ...] | None = None) -> Comparison:
        return blue_green.compare(self.catalog, REGISTRY, release, self.thresholds, None, windows)

    def gate(self, release: ReleasePlan, comparison: Comparison, actor: str) -> str | None:
        if comparison.promotable:
            return actor
        self.asked.append(comparison)
        return self.decisions.pop(0)

    def promote(self, release: ReleasePlan, comparison: Comparison, actor: str) -> dict[str, int]:
        if self.before_switch:
            self.before_switch.pop(0)()
        return promotion.promote(self.catalog, release, comparison, actor)


def windows_on_main(catalog: Catalog) -> dict[str, set[Window]]:
    found = {}
    for ref in TABLES:
        found[str(ref)] = lake.windows_in(catalog.load_table(ref.identifier), REGISTRY.by_table(ref)[1].window)
    return found


def events(catalog: Catalog) -> list[Event]:
    (logged,) = release_log.releases(catalog, FLIGHTS.name)
    return [e.event for e in logged.entries]


# --- what main gained ---------------------------------------------------------------------------


def test_main_gaining_a_window_is_a_lag_pinned_at_the_bronze_snapshot_main_recorded(lake_a):
    planned, _ = compared(lake_a.catalog, "v1.1")
    assert catch_up.behind(lake_a.catalog, REGISTRY, planned) is None

    landed = land(lake_a, DAY_B)
    lag = catch_up.behind(lake_a.catalog, REGISTRY, planned)
    rebased = catch_up.rebase(planned, lag)

    assert lag.windows == (B,) and lag.sources[0].inputs == {"flights.bronze": landed.bronze.snapshot_id}
    assert lag.base == main_ids(lake_a.catalog) != planned.base
    assert lag.commits == {str(SILVER_FLIGHTS): 1, str(GOLD_DAILY_DELAYS): 1}
    assert rebased.windows == (A, B) and rebased.base == lag.base
    assert rebased.pinned[A.key] == planned.pinned[A.key]
    assert (rebased.release_id, rebased.branch(GREEN)) == (planned.release_id, planned.branch(GREEN))
    assert catch_up.behind(lake_a.catalog, REGISTRY, rebased) is None


def test_a_window_main_rebuilt_from_corrected_bronze_is_pinned_again(lake_a):
    planned, _ = compared(lake_a.catalog, "v1.1")

    fixed = land(lake_a, DAY_A, corrected(DAY_A))
    lag = catch_up.behind(lake_a.catalog, REGISTRY, planned)

    assert lag.windows == (A,) and lag.sources[0].inputs == {"flights.bronze": fixed.bronze.snapshot_id}
    assert fixed.bronze.snapshot_id != planned.pinned[A.key]["flights.bronze"]


@pytest.mark.parametrize("how", ["gold rebuilt from the same silver", "compaction"])
def test_a_commit_that_changes_no_input_moves_the_base_and_builds_nothing(lake_a, how):
    planned, comparison = compared(lake_a.catalog, "v2")
    if how == "compaction":
        made_by = Provenance(RUN.code_version, "maintenance-run", "", "", operation=maintenance.COMPACTION)
        for ref in TABLES:
            assert maintenance.compact(lake_a.catalog.load_table(ref.identifier), 1, made_by) == 1
    else:
        build_gold(lake_a.catalog, A, planned.base[str(SILVER_FLIGHTS)], RUN)
    moved = main_ids(lake_a.catalog)

    lag = catch_up.behind(lake_a.catalog, REGISTRY, planned)
    steps = Steps(lake_a.catalog)
    done = catch_up.switch(lake_a.catalog, REGISTRY, planned, comparison, "automatic", steps)

    assert lag.sources == () and lag.base == moved
    assert (done.promoted, done.rounds, steps.built) == (True, 1, [])
    assert main_ids(lake_a.catalog) == done.switched
    assert events(lake_a.catalog) == [Event.CAUGHT_UP, Event.PROMOTED]
    assert release_log.live(lake_a.catalog, FLIGHTS.name).last(Event.PROMOTED).base == moved  # rollback goes there


@pytest.mark.parametrize("how", ["moved by hand to a release branch", "a commit without provenance"])
def test_main_moved_in_a_way_no_rebuild_follows_is_refused(lake_a, how):
    planned, comparison = compared(lake_a.catalog, "v2")
    silver = lake_a.catalog.load_table(SILVER_FLIGHTS.identifier)
    if how == "a commit without provenance":
        silver.append(pa.Table.from_pylist([], schema=silver.schema().as_arrow()))
    else:
        silver.manage_snapshots().set_current_snapshot(
            head_of(lake_a.catalog, SILVER_FLIGHTS, planned.branch(BLUE))
        ).commit()
    moved = main_ids(lake_a.catalog)

    with pytest.raises(errors.CannotCatchUp, match="silver.flights main holds snapshot .*start the release again"):
        catch_up.behind(lake_a.catalog, REGISTRY, planned)
    with pytest.raises(MainMoved):
        catch_up.switch(lake_a.catalog, REGISTRY, planned, comparison, "automatic", Steps(lake_a.catalog))

    assert main_ids(lake_a.catalog) == moved
    assert events(lake_a.catalog) == [Event.FAILED]


# --- catching up --------------------------------------------------------------------------------


def test_a_release_whose_base_moved_catches_up_and_green_holds_every_window_main_gained(lake_a):
    planned, comparison = compared(lake_a.catalog, "v2")  # within LOOSE thresholds: promoted with no one asked
    landed = land(lake_a, DAY_B)  # the daily pipeline lands a day while the release runs
    moved = main_ids(lake_a.catalog)
    steps = Steps(lake_a.catalog)

    done = catch_up.switch(lake_a.catalog, REGISTRY, planned, comparison, "automatic", steps)

    assert (done.promoted, done.rounds, done.actor, steps.asked) == (True, 1, "automatic", [])
    assert done.release.windows == (A, B) and steps.built == [(A, B)]
    assert main_ids(lake_a.catalog) == done.switched
    assert windows_on_main(lake_a.catalog) == {str(ref): {A, B} for ref in TABLES}  # no window dropped
    silver = on_day(rows_of(lake_a.catalog, SILVER_FLIGHTS), DAY_B)
    assert set(silver["_bronze_snapshot_id"]) == {landed.bronze.snapshot_id}  # from the input main recorded
    gold = on_day(rows_of(lake_a.catalog, GOLD_DAILY_DELAYS), DAY_B)
    assert_gold_matches(gold, expected_gold_v2(landing.day_rows(DAY_B)))  # rebuilt with green's version
    gold_compared = done.comparison.tables[1]
    assert done.comparison.windows == (A, B) and gold_compared.blue.rows == gold_compared.green.rows == 2 * 3
    assert events(lake_a.catalog) == [Event.CAUGHT_UP, Event.PROMOTED]
    promoted = release_log.live(lake_a.catalog, FLIGHTS.name).last(Event.PROMOTED)
    assert promoted.base == moved and set(promoted.windows) == {A.key, B.key}

    promotion.rollback(lake_a.catalog, FLIGHTS, "bob")

    assert main_ids(lake_a.catalog) == moved  # back to blue, with the day main gained
    assert_gold_matches(
        on_day(rows_of(lake_a.catalog, GOLD_DAILY_DELAYS), DAY_B), expected_gold(landing.day_rows(DAY_B))
    )


@pytest.mark.parametrize("answer", ["bob", None])
def test_windows_caught_up_after_an_approval_go_to_a_human_again_when_outside(lake_a, answer):
    planned, comparison = compared(lake_a.catalog, "v2", thresholds=STRICT)
    assert comparison.verdict is Verdict.OUTSIDE  # alice approved it on day A
    land(lake_a, DAY_B)
    moved = main_ids(lake_a.catalog)
    steps = Steps(lake_a.catalog, STRICT, decisions=[answer])

    done = catch_up.switch(lake_a.catalog, REGISTRY, planned, comparison, "alice", steps)

    (asked,) = steps.asked  # the hold shows the windows no one has seen, only them
    assert asked.windows == (B,) and asked.verdict is Verdict.OUTSIDE and asked.tables[1].blue.rows == 3
    assert (done.actor, done.promoted) == (answer, answer is not None)
    if answer:
        assert (
            main_ids(lake_a.catalog) == done.switched
            and release_properties(lake_a.catalog)[str(SILVER_FLIGHTS)][1] == "v2"
        )
        assert done.comparison.windows == (A, B)
        assert release_log.live(lake_a.catalog, FLIGHTS.name).last(Event.PROMOTED).actor == "bob"
    else:
        assert main_ids(lake_a.catalog) == moved and done.switched == {}
        assert release_log.live(lake_a.catalog, FLIGHTS.name) is None


def test_a_commit_between_the_look_and_the_switch_is_caught_up_on_the_next_round(lake_a):
    planned, comparison = compared(lake_a.catalog, "v1.1")
    steps = Steps(lake_a.catalog, before_switch=[lambda: land(lake_a, DAY_B)])

    done = catch_up.switch(lake_a.catalog, REGISTRY, planned, comparison, "automatic", steps)

    assert (done.promoted, done.rounds, done.release.windows) == (True, 1, (A, B))
    assert done.comparison.verdict is Verdict.IDENTICAL
    assert windows_on_main(lake_a.catalog) == {str(ref): {A, B} for ref in TABLES}
    assert events(lake_a.catalog) == [Event.CAUGHT_UP, Event.PROMOTED]


def test_a_base_that_keeps_moving_fails_the_release_after_the_last_round_with_nothing_switched(lake_a):
    planned, comparison = compared(lake_a.catalog, "v1.1")
    land(lake_a, DAY_B)
    steps = Steps(lake_a.catalog, while_building=[lambda: land(lake_a, DAY_C)])  # another day lands meanwhile

    with pytest.raises(errors.BaseKeptMoving, match=r"base kept moving: after 1 catch-up round.*2013-01-04") as failed:
        catch_up.switch(lake_a.catalog, REGISTRY, planned, comparison, "automatic", steps, max_rounds=1)

    assert isinstance(failed.value, SwitchFailed)
    assert steps.built == [(A, B)]
    assert release_properties(lake_a.catalog) == {str(ref): ("", "") for ref in TABLES}  # nothing switched
    assert events(lake_a.catalog) == [Event.CAUGHT_UP, Event.FAILED]
    assert "max_catch_up_rounds" in release_log.releases(lake_a.catalog, FLIGHTS.name)[0].entries[-1].reason


def test_with_no_round_allowed_a_moved_base_fails_at_once(lake_a):
    planned, comparison = compared(lake_a.catalog, "v2")
    build_gold(lake_a.catalog, A, planned.base[str(SILVER_FLIGHTS)], RUN)
    steps = Steps(lake_a.catalog)

    with pytest.raises(errors.BaseKeptMoving, match="after 0 catch-up round"):
        catch_up.switch(lake_a.catalog, REGISTRY, planned, comparison, "automatic", steps, max_rounds=0)

    assert steps.built == [] and events(lake_a.catalog) == [Event.FAILED]
