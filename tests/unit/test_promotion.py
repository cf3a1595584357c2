"""lakeops.release.promotion and .cut: switch by moving main (all or nothing), roll back, what readers can pair."""

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from lakeops import errors
from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import Window
from lakeops.errors import MainMoved, NothingToRollBack, SnapshotNotFound, SwitchFailed, UnsafeRollback
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance
from lakeops.release import blue_green, cut, promotion, release_log
from lakeops.release.blue_green import BLUE, GREEN
from lakeops.release.comparison import Verdict
from lakeops.release.fingerprint import fingerprint
from lakeops.release.release_log import Event
from lakeops.versioning import maintenance

from . import lakes
from .conftest import DAY_A
from .flights import FLIGHTS, GOLD_DAILY_DELAYS, REGISTRY, SILVER_FLIGHTS, build_gold
from .release_helpers import (
    TABLES,
    built,
    built_lake,
    colour_print,
    compared,
    data_files,
    head_of,
    main_ids,
    metadata_version,
    release_properties,
    snapshot_set,
    table_print,
    v2_changes,
)
from .versioning_helpers import RUN, lake_settings

WINDOW = Window(DAY_A)


@dataclass(frozen=True)
class Day:
    home: Path
    catalog: Catalog


@pytest.fixture
def day(tmp_path) -> Day:
    """Day A built on main with v1: every test here moves main, so each gets its own lake."""
    catalog, _, _ = built_lake(tmp_path, (DAY_A,))
    return Day(tmp_path, catalog)


def rebuild_gold_on_main(catalog: Catalog, version: str = "v1") -> int:
    """A real commit of the pipeline landing on Gold's main: rebuild day A from Silver's main."""
    silver_main = catalog.load_table(SILVER_FLIGHTS.identifier).current_snapshot().snapshot_id
    return build_gold(catalog, WINDOW, silver_main, RUN, version=version).snapshot_id


# --- promote ------------------------------------------------------------------------------------


def test_promotion_moves_main_of_both_tables_to_the_sealed_green(day):
    planned, comparison = compared(day.catalog, "v2")
    green_heads = {str(ref): head_of(day.catalog, ref, planned.branch(GREEN)) for ref in TABLES}
    green_prints = {str(ref): colour_print(day.catalog, ref, planned, GREEN) for ref in TABLES}

    sealed = promotion.promote(day.catalog, planned, comparison, "alice", "run-9")

    assert main_ids(day.catalog) == sealed
    for ref in TABLES:
        table = day.catalog.load_table(ref.identifier)
        snapshot = table.snapshot_by_id(sealed[str(ref)])
        assert snapshot.parent_snapshot_id == green_heads[str(ref)]  # the seal is an empty commit on green
        summary = snapshot.summary.additional_properties
        assert {k: summary[f"lakeops.release.{k}"] for k in ("id", "verdict", "blue-version", "green-version")} == {
            "id": planned.release_id,
            "verdict": str(Verdict.WITHIN),
            "blue-version": "v1",
            "green-version": "v2",
        }
        assert summary["lakeops.release.approved-by"] == "alice"
        assert table_print(day.catalog, ref) == green_prints[str(ref)]  # a plain reader sees green
    assert release_properties(day.catalog) == {str(ref): (planned.release_id, "v2") for ref in TABLES}

    gold = day.catalog.load_table(GOLD_DAILY_DELAYS.identifier).scan().to_pandas()
    for (_, origin), (_, v2_cancelled) in v2_changes((DAY_A,)).items():
        assert gold.loc[gold["origin"] == origin, "cancelled"].tolist() == [v2_cancelled]

    (logged,) = release_log.releases(day.catalog, FLIGHTS.name)
    assert logged.status is Event.PROMOTED and logged.live
    entry = logged.last(Event.PROMOTED)
    assert (entry.actor, entry.base, entry.target, entry.flow_run_id) == ("alice", planned.base, sealed, "run-9")
    assert release_log.live(day.catalog, FLIGHTS.name).release_id == planned.release_id
    assert release_log.live_version(day.catalog, FLIGHTS.name) == "v2"
    assert release_log.build_version(day.catalog, FLIGHTS.name, None, FLIGHTS.default_version) == "v2"
    assert release_log.build_version(day.catalog, FLIGHTS.name, "v1.1", FLIGHTS.default_version) == "v1.1"


def test_promotion_copies_no_data(day):
    planned, comparison = compared(day.catalog, "v2")
    green_files = {str(ref): data_files(day.catalog, ref, planned.branch(GREEN)) for ref in TABLES}

    promotion.promote(day.catalog, planned, comparison, "alice")

    assert {str(ref): data_files(day.catalog, ref, "main") for ref in TABLES} == green_files


def test_a_promote_retried_after_its_switch_landed_leaves_the_release_live(day):
    """Promote called again for a release already live: what an I/O retry of the promote task does."""
    planned, comparison = compared(day.catalog, "v2")
    sealed = promotion.promote(day.catalog, planned, comparison, "alice")

    with contextlib.suppress(SwitchFailed):
        promotion.promote(day.catalog, planned, comparison, "alice")

    assert main_ids(day.catalog) == sealed  # consumers read green
    assert release_log.live_version(day.catalog, FLIGHTS.name) == "v2"  # so the log must say green is live


def test_a_rollback_retried_after_its_moves_landed_records_it_instead_of_refusing(day):
    """Rollback called again when its ref moves landed but its log entry did not (an I/O retry)."""
    before = main_ids(day.catalog)
    planned, comparison = compared(day.catalog, "v2")
    sealed = promotion.promote(day.catalog, planned, comparison, "alice")
    moves = [promotion.Move(name, sealed[name], before[name]) for name in reversed(list(sealed))]
    promotion.move_all(day.catalog, moves, {promotion.RELEASE_PROPERTY: "", promotion.VERSION_PROPERTY: ""})
    assert release_log.live_version(day.catalog, FLIGHTS.name) == "v2"  # the log still says green is live

    done = promotion.rollback(day.catalog, FLIGHTS, "bob", "retried")

    assert done.release_id == planned.release_id and main_ids(day.catalog) == before
    assert release_log.live_version(day.catalog, FLIGHTS.name) is None


# --- all or nothing -----------------------------------------------------------------------------


def test_a_switch_that_finds_gold_moved_leaves_silver_where_it_was_and_says_the_base_moved(day):
    planned, comparison = compared(day.catalog, "v2")
    concurrent = rebuild_gold_on_main(day.catalog)

    with pytest.raises(errors.BaseMoved, match="gold.daily_delays.*switched back: silver.flights") as failed:
        promotion.promote(day.catalog, planned, comparison, "alice")

    assert isinstance(failed.value, SwitchFailed) and isinstance(failed.value.__cause__, MainMoved)
    assert main_ids(day.catalog) == {
        str(SILVER_FLIGHTS): planned.base[str(SILVER_FLIGHTS)],
        str(GOLD_DAILY_DELAYS): concurrent,
    }
    assert release_properties(day.catalog) == {str(ref): ("", "") for ref in TABLES}
    # Not logged as failed: the caller catches up (tests/unit/test_release_catch_up.py) or fails the release.
    assert release_log.releases(day.catalog, FLIGHTS.name) == []
    assert release_log.live(day.catalog, FLIGHTS.name) is None
    assert release_log.build_version(day.catalog, FLIGHTS.name, None, FLIGHTS.default_version) == "v1"


def test_a_failed_switch_keeps_the_live_release_named_in_every_table(day):
    first, same = compared(day.catalog, "v1.1")
    promotion.promote(day.catalog, first, same, "alice")
    second, comparison = compared(day.catalog, "v2")
    rebuild_gold_on_main(day.catalog, "v1.1")

    with pytest.raises(SwitchFailed):
        promotion.promote(day.catalog, second, comparison, "alice")

    assert release_log.live_version(day.catalog, FLIGHTS.name) == "v1.1"
    # Silver was switched and switched back: it must again name the release consumers read, like Gold.
    assert release_properties(day.catalog) == {str(ref): (first.release_id, "v1.1") for ref in TABLES}


def test_move_all_undoes_the_first_move_when_the_second_cannot_be_made(day):
    planned = built(day.catalog, "v2")
    base, green = planned.base, {str(ref): head_of(day.catalog, ref, planned.branch(GREEN)) for ref in TABLES}
    missing = 1 + max(s.snapshot_id for s in day.catalog.load_table(GOLD_DAILY_DELAYS.identifier).snapshots())
    moves = [
        promotion.Move(str(SILVER_FLIGHTS), base[str(SILVER_FLIGHTS)], green[str(SILVER_FLIGHTS)]),
        promotion.Move(str(GOLD_DAILY_DELAYS), base[str(GOLD_DAILY_DELAYS)], missing),
    ]

    with pytest.raises(SwitchFailed, match=f"gold.daily_delays to snapshot {missing}") as failed:
        promotion.move_all(day.catalog, moves, {promotion.RELEASE_PROPERTY: "r-x", promotion.VERSION_PROPERTY: "v2"})

    assert isinstance(failed.value.__cause__, SnapshotNotFound)
    assert not isinstance(failed.value, errors.BaseMoved)  # no catch-up can mend a missing snapshot
    assert main_ids(day.catalog) == base


# --- rollback -----------------------------------------------------------------------------------


def test_rollback_restores_what_consumers_read_before_in_one_commit_per_table(day):
    planned, comparison = compared(day.catalog, "v2")
    blue = {str(ref): colour_print(day.catalog, ref, planned, BLUE) for ref in TABLES}
    sealed = promotion.promote(day.catalog, planned, comparison, "alice")
    blue_green.drop_branches(day.catalog, planned)  # what the flow does once green is live
    versions = {str(ref): metadata_version(day.catalog, ref) for ref in TABLES}
    snapshots = {str(ref): snapshot_set(day.catalog, ref) for ref in TABLES}

    done = promotion.rollback(day.catalog, FLIGHTS, "bob", reason="cancelled counts look wrong")

    assert done == promotion.RolledBack(planned.release_id, planned.base, planned.release_id, None)
    assert main_ids(day.catalog) == planned.base
    for ref in TABLES:
        assert metadata_version(day.catalog, ref) == versions[str(ref)] + 1, ref  # one catalog commit
        assert snapshot_set(day.catalog, ref) == snapshots[str(ref)], ref  # nothing new, nothing lost
        assert table_print(day.catalog, ref) == blue[str(ref)]
        assert not any(name.startswith("release-") for name in day.catalog.load_table(ref.identifier).refs())
    assert release_properties(day.catalog) == {str(ref): ("", "") for ref in TABLES}
    (logged,) = release_log.releases(day.catalog, FLIGHTS.name)
    assert [e.event for e in logged.entries] == [Event.PROMOTED, Event.ROLLED_BACK] and not logged.live
    rolled = logged.last(Event.ROLLED_BACK)
    assert (rolled.actor, rolled.reason, rolled.base, rolled.target) == (
        "bob",
        "cancelled counts look wrong",
        sealed,
        planned.base,
    )
    assert (
        release_log.live(day.catalog, FLIGHTS.name) is None
        and release_log.live_version(day.catalog, FLIGHTS.name) is None
    )


def test_rollback_goes_back_one_release_at_a_time(day):
    first, same = compared(day.catalog, "v1.1")
    assert same.verdict is Verdict.IDENTICAL
    promotion.promote(day.catalog, first, same, "alice")
    second, comparison = compared(day.catalog, "v2")
    assert (second.blue_version, second.green_version) == ("v1.1", "v2")  # blue is the live release
    promotion.promote(day.catalog, second, comparison, "alice")

    back = promotion.rollback(day.catalog, FLIGHTS, "bob")

    assert (back.release_id, back.live_now) == (second.release_id, first.release_id)
    assert main_ids(day.catalog) == second.base
    assert release_log.live_version(day.catalog, FLIGHTS.name) == "v1.1"
    assert release_properties(day.catalog) == {str(ref): (first.release_id, "v1.1") for ref in TABLES}

    again = promotion.rollback(day.catalog, FLIGHTS, "bob")

    assert (again.release_id, again.live_now) == (first.release_id, None)
    assert main_ids(day.catalog) == first.base
    assert release_log.live_version(day.catalog, FLIGHTS.name) is None
    assert [r.status for r in release_log.releases(day.catalog, FLIGHTS.name)] == [Event.ROLLED_BACK] * 2
    with pytest.raises(NothingToRollBack):
        promotion.rollback(day.catalog, FLIGHTS, "bob")


def test_rollback_with_no_live_release_refuses(catalog):
    with pytest.raises(NothingToRollBack, match="flights"):
        promotion.rollback(catalog, FLIGHTS, "bob")
    with pytest.raises(ValueError, match="unknown dataset"):
        promotion.rollback(catalog, REGISTRY.dataset("bookings"), "bob")


def test_rollback_refuses_to_discard_a_build_that_landed_after_promotion_unless_forced(day):
    planned, comparison = compared(day.catalog, "v2")
    promotion.promote(day.catalog, planned, comparison, "alice")
    rebuilt = rebuild_gold_on_main(day.catalog, "v2")
    before = main_ids(day.catalog)

    with pytest.raises(UnsafeRollback, match=r"gold.daily_delays main has \d+ snapshot.*2013-01-02.*--force"):
        promotion.rollback(day.catalog, FLIGHTS, "bob")

    assert main_ids(day.catalog) == before and before[str(GOLD_DAILY_DELAYS)] == rebuilt
    assert release_log.live(day.catalog, FLIGHTS.name).release_id == planned.release_id

    promotion.rollback(day.catalog, FLIGHTS, "bob", reason="discard it", force=True)

    assert main_ids(day.catalog) == planned.base
    assert release_log.live(day.catalog, FLIGHTS.name) is None


@pytest.mark.parametrize("how", ["maintenance.compact", "replace_rows"])
def test_a_compaction_after_promotion_does_not_block_rollback(day, how):
    planned, comparison = compared(day.catalog, "v2")
    sealed = promotion.promote(day.catalog, planned, comparison, "alice")
    made_by = Provenance(RUN.code_version, "maintenance-run", "", "", operation=maintenance.COMPACTION)
    for ref in TABLES:
        table = day.catalog.load_table(ref.identifier)
        if how == "maintenance.compact":
            assert maintenance.compact(table, 1, made_by) == 1
        else:
            where = REGISTRY.by_table(ref)[1].window.filter(WINDOW)
            lake.replace_rows(table, table.scan().to_arrow(), where, made_by)
    compacted = main_ids(day.catalog)
    assert all(compacted[t] != sealed[t] for t in sealed)

    promotion.rollback(day.catalog, FLIGHTS, "bob")

    assert main_ids(day.catalog) == planned.base


def test_rollback_refuses_and_changes_nothing_when_the_base_was_expired(day):
    planned, comparison = compared(day.catalog, "v2")
    sealed = promotion.promote(day.catalog, planned, comparison, "alice")
    base = planned.base[str(SILVER_FLIGHTS)]
    day.catalog.load_table(SILVER_FLIGHTS.identifier).maintenance.expire_snapshots().by_ids([base]).commit()
    logged = len(release_log.entries(day.catalog))

    with pytest.raises(SnapshotNotFound, match=f"silver.flights snapshot {base}.*expired by maintenance"):
        promotion.rollback(day.catalog, FLIGHTS, "bob")

    assert main_ids(day.catalog) == sealed  # Gold, switched back first, did not move either
    assert len(release_log.entries(day.catalog)) == logged
    assert release_log.live(day.catalog, FLIGHTS.name).release_id == planned.release_id


# --- what readers see during a switch --------------------------------------------------------

Pair = tuple[int, int]  # (Silver main, Gold main)


@dataclass(frozen=True)
class Switched:
    """A v2 release promoted and rolled back for real, each table's move recorded as it was made."""

    catalog: Catalog
    reader: Catalog  # a consumer's own connection to the lake
    release_id: str
    base: Pair
    sealed: Pair
    moves: dict[str, list[tuple[promotion.Move, dict[str, str]]]]  # promote | rollback -> moves, in order
    instants: list[Pair]  # (Silver, Gold) mains before the switch and after every move
    gold_scans: list[str]  # the colour of a plain Gold scan after every move
    prints: dict[str, object]


def mains(catalog: Catalog) -> Pair:
    ids = main_ids(catalog)
    return ids[str(SILVER_FLIGHTS)], ids[str(GOLD_DAILY_DELAYS)]


@pytest.fixture(scope="module")
def switched(tmp_path_factory) -> Switched:
    home = tmp_path_factory.mktemp("switched")
    catalog, _, _ = built_lake(home, (DAY_A,))
    settings = lake_settings(home / "lake")
    reader = lakes.open_catalog(settings, settings.catalog_name)
    planned, comparison = compared(catalog, "v2")
    prints = {colour: colour_print(catalog, GOLD_DAILY_DELAYS, planned, colour) for colour in (BLUE, GREEN)}
    assert prints[BLUE] != prints[GREEN]
    made: list[tuple[promotion.Move, dict[str, str]]] = []
    instants, scans = [mains(catalog)], []
    move = promotion._move

    def stepped(catalog_: Catalog, step: promotion.Move, properties: dict[str, str]) -> dict[str, str]:
        """The real per-table move; then the instant it made is recorded and a plain reader scans Gold."""
        before = move(catalog_, step, properties)
        made.append((step, dict(properties)))
        instants.append(mains(catalog))
        scanned = fingerprint(reader.load_table(GOLD_DAILY_DELAYS.identifier).scan().to_arrow())
        scans.append(next((c for c, p in prints.items() if p == scanned), "neither"))
        return before

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(promotion, "_move", stepped)
        sealed = promotion.promote(catalog, planned, comparison, "alice")
        promoted = len(made)
        promotion.rollback(catalog, FLIGHTS, "bob")
    base = (planned.base[str(SILVER_FLIGHTS)], planned.base[str(GOLD_DAILY_DELAYS)])
    moves = {"promote": made[:promoted], "rollback": made[promoted:]}
    sealed_pair = (sealed[str(SILVER_FLIGHTS)], sealed[str(GOLD_DAILY_DELAYS)])
    return Switched(catalog, reader, planned.release_id, base, sealed_pair, moves, instants, scans, prints)


def test_at_every_instant_of_a_switch_and_its_rollback_gold_is_green_only_when_silver_is(switched):
    (base_silver, base_gold), (green_silver, green_gold) = switched.base, switched.sealed

    assert switched.instants == [
        (base_silver, base_gold),
        (green_silver, base_gold),  # between the two commits of the promotion
        (green_silver, green_gold),
        (green_silver, base_gold),  # between the two commits of the rollback
        (base_silver, base_gold),
    ]
    assert (base_silver, green_gold) not in switched.instants
    assert switched.gold_scans == [BLUE, GREEN, BLUE, BLUE]  # every scan one colour, whole


class Interleaved:
    """A catalog for a reader: before its k-th load of a table, the switch steps scheduled at k are made."""

    def __init__(self, catalog: Catalog, steps: dict[int, list]) -> None:
        self.catalog, self.steps, self.loads = catalog, steps, 0

    def load_table(self, identifier: str):  # noqa: ANN201 - a pyiceberg Table
        for step in self.steps.pop(self.loads, []):
            step()
        self.loads += 1
        return self.catalog.load_table(identifier)


def at(switched: Switched, state: Pair, release_id: str) -> None:
    """Put both mains at `state` (Silver, Gold), each naming `release_id`, as a switch leaves them."""
    props = {promotion.RELEASE_PROPERTY: release_id, promotion.VERSION_PROPERTY: "v2" if release_id else ""}
    now = mains(switched.catalog)
    moves = [promotion.Move(str(ref), now[i], state[i]) for i, ref in enumerate(TABLES) if now[i] != state[i]]
    promotion.move_all(switched.catalog, moves, props)


def schedules(switched: Switched, which: str, loads: int) -> Iterator[tuple[tuple[int, int], Interleaved]]:
    """Every way the two moves of a promotion (or rollback) fall among a reader's first `loads` table loads.

    (i, j): the first move is made just before load i, the second just before load j (i <= j; `loads`
    means after them). Each schedule starts, when it is taken, from the state the switch starts from.
    """
    start = (switched.base, "") if which == "promote" else (switched.sealed, switched.release_id)
    (first, first_props), (second, second_props) = switched.moves[which]
    for i in range(loads + 1):
        for j in range(i, loads + 1):
            at(switched, *start)
            steps: dict[int, list] = {}
            steps.setdefault(i, []).append(lambda m=first, p=first_props: promotion.move_all(switched.catalog, [m], p))
            steps.setdefault(j, []).append(
                lambda m=second, p=second_props: promotion.move_all(switched.catalog, [m], p)
            )
            yield (i, j), Interleaved(switched.reader, steps)


def plain_read(catalog: Interleaved, order: tuple[TableRef, ...]) -> Pair:
    """A plain reader: each table's main, one load after the other in `order`."""
    seen = {str(ref): catalog.load_table(ref.identifier).current_snapshot().snapshot_id for ref in order}
    return seen[str(SILVER_FLIGHTS)], seen[str(GOLD_DAILY_DELAYS)]


GOLD_THEN_SILVER = (GOLD_DAILY_DELAYS, SILVER_FLIGHTS)
SILVER_THEN_GOLD = (SILVER_FLIGHTS, GOLD_DAILY_DELAYS)


@pytest.mark.parametrize(
    ("which", "order", "pairs_green_gold_with_blue_silver"),
    [
        ("promote", GOLD_THEN_SILVER, False),
        ("promote", SILVER_THEN_GOLD, True),
        ("rollback", GOLD_THEN_SILVER, True),  # Gold goes back first: read green, then Silver is back
        ("rollback", SILVER_THEN_GOLD, False),
    ],
)
def test_what_a_plain_reader_of_both_tables_can_pair_depends_on_its_order_and_the_switch(
    switched, which, order, pairs_green_gold_with_blue_silver
):
    (base_silver, base_gold), (green_silver, green_gold) = switched.base, switched.sealed

    seen = {plain_read(reader, order) for _, reader in schedules(switched, which, 2)}

    assert (green_silver, base_gold) in seen  # the state between a switch's two commits: any reader
    assert ((base_silver, green_gold) in seen) is pairs_green_gold_with_blue_silver
    assert seen <= {switched.base, switched.sealed, (green_silver, base_gold), (base_silver, green_gold)}


@pytest.mark.parametrize("which", ["promote", "rollback"])
def test_a_consistent_cut_is_one_release_whole_however_a_switch_falls_among_its_reads(switched, which):
    releases = {switched.base: "", switched.sealed: switched.release_id}
    found = set()
    for (i, j), reader in schedules(switched, which, 6):  # moves in the first double read and the next one
        got = cut.consistent_cut(reader, FLIGHTS)

        pair = (got.snapshots[str(SILVER_FLIGHTS)], got.snapshots[str(GOLD_DAILY_DELAYS)])
        assert pair in releases, (i, j, pair)  # never mid-switch, never Gold of one release with Silver of another
        assert got.release_id == releases[pair] and got.dataset == FLIGHTS.name
        found.add(pair)
    assert found == set(releases)  # before the switch, one side; after it, the other


def test_a_cut_read_across_a_whole_rollback_reads_again_and_gives_the_state_after_it(switched):
    at(switched, switched.sealed, switched.release_id)
    steps = [lambda m=m, p=p: promotion.move_all(switched.catalog, [m], p) for m, p in switched.moves["rollback"]]
    reader = Interleaved(switched.reader, {2: steps})  # Silver and Gold read green, then both go back

    got = cut.consistent_cut(reader, FLIGHTS)

    assert (got.release_id, got.snapshots) == (
        "",
        {str(SILVER_FLIGHTS): switched.base[0], str(GOLD_DAILY_DELAYS): switched.base[1]},
    )
    assert reader.loads == 8  # the first double read saw the rollback; the second was stable
    rows = got.scan(switched.catalog, GOLD_DAILY_DELAYS).to_arrow()
    assert fingerprint(rows) == switched.prints[BLUE]


def test_a_cut_of_tables_left_half_switched_refuses_rather_than_mix_releases(switched):
    at(switched, switched.base, "")
    (silver_move, props), _ = switched.moves["promote"]
    promotion.move_all(switched.catalog, [silver_move], props)  # as a switch whose undo could not land leaves it

    with pytest.raises(
        errors.NoConsistentCut, match=f"'silver.flights': '{switched.release_id}'.*'gold.daily_delays': 'none'"
    ):
        cut.consistent_cut(switched.catalog, FLIGHTS, attempts=2)

    at(switched, switched.base, "")


def test_a_reader_in_a_tight_loop_never_fails_and_sees_gold_whole_and_switched_once_each_way(day):
    """A live reader beside the real switch; asserts only what holds however the threads interleave."""
    planned, comparison = compared(day.catalog, "v2")
    prints = {colour: colour_print(day.catalog, GOLD_DAILY_DELAYS, planned, colour) for colour in (BLUE, GREEN)}
    settings = lake_settings(day.home / "lake")
    reader = lakes.open_catalog(settings, settings.catalog_name)  # its own connection
    seen, errors, stop = [], [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                scanned = fingerprint(reader.load_table(GOLD_DAILY_DELAYS.identifier).scan().to_arrow())
            except Exception as exc:  # any failure is the finding
                errors.append(exc)
                continue
            seen.append(next((c for c, p in prints.items() if p == scanned), scanned))

    def scans_after(count: int) -> None:
        """Wait until `count` scans more have ended: all but the first began after this call."""
        target = len(seen) + len(errors) + count
        while len(seen) + len(errors) < target and thread.is_alive():
            stop.wait(0.005)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    scans_after(3)
    promotion.promote(day.catalog, planned, comparison, "alice")
    scans_after(3)
    promotion.rollback(day.catalog, FLIGHTS, "bob")
    scans_after(3)
    stop.set()
    thread.join(10)

    assert errors == []
    assert set(seen) <= {BLUE, GREEN}  # every scan is one colour whole
    # One reader's loads are ordered and Gold's main goes blue -> green -> blue once: no flapping.
    changes = [(a, b) for a, b in zip(seen, seen[1:], strict=False) if a != b]
    assert seen[0] == BLUE and seen[-1] == BLUE and changes == [(BLUE, GREEN), (GREEN, BLUE)]
