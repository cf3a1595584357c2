"""lakeops.release_log: the ops.releases event log, read back with plain pyiceberg, and the state it folds to."""

from datetime import UTC, datetime, timedelta

import pytest

from lakeops.datasets.names import RELEASES
from lakeops.release import release_log
from lakeops.release.release_log import Entry, Event

from .flights import FLIGHTS

T0 = datetime(2024, 5, 1, 9, 30, 0, 123456, tzinfo=UTC)
BIG = 2**63 - 1  # the largest snapshot id Iceberg can hand out
ODD = 2**53 + 1  # the first integer a float64 cannot hold: a JSON reader going through floats would lose it


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(release_id: str, event: Event, minutes: int, dataset: str = FLIGHTS.name, **fields) -> Entry:
    return Entry(release_id, dataset, event, at(minutes), **{"blue_version": "v1", "green_version": "v2", **fields})


def log(catalog, *entries: Entry) -> None:
    for one in entries:
        release_log.record(catalog, one)


def test_an_entry_comes_back_exactly_as_recorded(catalog):
    full = Entry(
        "r1",
        FLIGHTS.name,
        Event.PROMOTED,
        T0,
        actor="alice",
        blue_version="v1",
        green_version="v2",
        windows={"2013-01-02": {"flights.bronze": BIG}, "2013-01-03": {"flights.bronze": ODD}},
        base={"silver.flights": ODD, "gold.daily_delays": BIG - 1},
        target={"silver.flights": BIG, "gold.daily_delays": 1},
        verdict="within thresholds",
        summary={"gold.daily_delays": {"diff": {"changed": 7, "changed_fraction": 0.7777}, "breaches": []}},
        sample=[{"table": "gold.daily_delays", "origin": "EWR", "cancelled.blue": 3, "cancelled.green": 5}],
        reason="numbers checked with finance",
        flow_run_id="run-7",
    )

    release_log.record(catalog, full)

    assert release_log.entries(catalog) == [full]
    (back,) = release_log.entries(catalog)
    assert back.windows["2013-01-02"]["flights.bronze"] == BIG and back.base["silver.flights"] == ODD
    pinned = [snapshot for inputs in back.windows.values() for snapshot in inputs.values()]
    assert all(type(v) is int for v in (*pinned, *back.base.values(), *back.target.values()))


def test_each_event_is_one_commit_a_plain_reader_can_read(catalog):
    log(catalog, entry("r1", Event.STARTED, 0), entry("r1", Event.COMPARED, 1, verdict="identical"))

    table = catalog.load_table(RELEASES.identifier)
    assert len(table.snapshots()) == 2
    rows = table.scan().to_arrow().to_pylist()
    assert sorted(r["event"] for r in rows) == ["compared", "started"]
    assert {r["windows"] for r in rows} == {"{}"}  # JSON text, decodable without lakeops


def test_an_empty_log_has_no_release_and_builds_with_the_default_version(catalog):
    assert release_log.entries(catalog) == [] and release_log.releases(catalog) == []
    assert release_log.live(catalog, FLIGHTS.name) is None and release_log.live_version(catalog, FLIGHTS.name) is None
    assert (
        release_log.build_version(catalog, FLIGHTS.name, None, FLIGHTS.default_version)
        == FLIGHTS.default_version
        == "v1"
    )
    assert release_log.build_version(catalog, FLIGHTS.name, "v2", FLIGHTS.default_version) == "v2"


def test_entries_come_oldest_first_and_per_dataset(catalog):
    log(
        catalog,
        entry("r2", Event.STARTED, 5),
        entry("other", Event.STARTED, 3, dataset="weather"),
        entry("r1", Event.STARTED, 1),
        entry("r1", Event.PROMOTED, 4),
    )

    assert [(e.release_id, e.event) for e in release_log.entries(catalog, FLIGHTS.name)] == [
        ("r1", Event.STARTED),
        ("r1", Event.PROMOTED),
        ("r2", Event.STARTED),
    ]
    assert [e.release_id for e in release_log.entries(catalog)] == ["r1", "other", "r1", "r2"]
    assert [e.release_id for e in release_log.entries(catalog, "weather")] == ["other"]


def test_a_release_folds_to_its_last_event(catalog):
    log(
        catalog,
        entry("r1", Event.STARTED, 0, actor="alice", flow_run_id="run-1"),
        entry("r1", Event.COMPARED, 1, verdict="outside thresholds", flow_run_id="run-1"),
        entry("r1", Event.HELD, 2, verdict="outside thresholds"),
        entry("r1", Event.APPROVED, 3, actor="bob", reason="expected change"),
        entry("r1", Event.PROMOTED, 4, actor="bob", target={"gold.daily_delays": BIG}),
    )

    (r1,) = release_log.releases(catalog, FLIGHTS.name)

    assert (r1.release_id, r1.dataset, r1.status, r1.live) == ("r1", FLIGHTS.name, Event.PROMOTED, True)
    assert r1.first.event is Event.STARTED and r1.first.actor == "alice"
    assert r1.verdict == "outside thresholds" and r1.flow_run_id == "run-1"
    assert r1.last(Event.APPROVED).reason == "expected change"
    assert r1.last(Event.PROMOTED).target == {"gold.daily_delays": BIG}
    assert r1.last(Event.ROLLED_BACK) is None
    assert release_log.find(catalog, "r1") == r1 and release_log.find(catalog, "nope") is None


@pytest.mark.parametrize("last", [Event.STARTED, Event.HELD, Event.REJECTED, Event.FAILED, Event.ROLLED_BACK])
def test_only_a_promoted_release_is_live(catalog, last):
    log(catalog, entry("r1", Event.PROMOTED, 0), entry("r2", Event.PROMOTED, 1), entry("r2", last, 2))

    assert release_log.releases(catalog, FLIGHTS.name)[1].live is False
    assert release_log.live(catalog, FLIGHTS.name).release_id == "r1"


def test_live_is_the_newest_promoted_release_not_rolled_back(catalog):
    r1 = [entry("r1", Event.STARTED, 0, green_version="v1.1"), entry("r1", Event.PROMOTED, 1, green_version="v1.1")]
    r2 = [entry("r2", Event.STARTED, 2, blue_version="v1.1"), entry("r2", Event.PROMOTED, 3, blue_version="v1.1")]
    log(catalog, *r1, *r2)

    assert release_log.live(catalog, FLIGHTS.name).release_id == "r2"
    assert release_log.live_version(catalog, FLIGHTS.name) == "v2"
    assert release_log.build_version(catalog, FLIGHTS.name, None, FLIGHTS.default_version) == "v2"

    log(catalog, entry("r2", Event.ROLLED_BACK, 4, actor="bob", reason="bad numbers"))

    assert release_log.live(catalog, FLIGHTS.name).release_id == "r1"
    assert release_log.live_version(catalog, FLIGHTS.name) == "v1.1"
    assert release_log.find(catalog, "r2").status is Event.ROLLED_BACK  # history stays
    assert release_log.live(catalog, "weather") is None
