"""lakeops.sla: the fold of a window's facts into its state, the decisions, the messages, the facts table."""

import random
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from lakeops.build import pipeline
from lakeops.datasets.names import SLA_FACTS
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.readiness import sla
from lakeops.readiness.sla import Fact, State

from .conftest import DAY_A
from .flights import BRONZE_FLIGHTS, ingest_bronze
from .sla_helpers import (
    CONTRACT,
    DATASET,
    DEADLINE,
    EXPECTED,
    MADE_BY,
    WINDOW,
    at,
    fact,
    fell_back,
    missed,
    no_fallback,
    opened,
    signal,
    with_terms,
)

NOW = at(2, 12)
LATER = at(3, 9)


def state_of(facts, now=NOW) -> sla.WindowState:
    return sla.window_state(CONTRACT, WINDOW.key, facts, now)


# --- the fold ---------------------------------------------------------------------------------


def test_a_signal_without_an_opened_fact_is_unwatched():
    state = state_of([signal(at(2, 6, 5))])

    assert state.state == State.UNWATCHED
    assert state.signal_at == at(2, 6, 5)
    assert state.expected_at is None and state.deadline is None
    assert state.lateness_s is None


@pytest.mark.parametrize(
    "signal_at",
    [at(1, 23), EXPECTED, EXPECTED + timedelta(minutes=10), DEADLINE],
    ids=["early", "at expected", "within buffer", "at deadline"],
)
def test_a_signal_at_or_before_the_deadline_is_on_time(signal_at):
    state = state_of([opened(), signal(signal_at)])

    assert state.state == State.ON_TIME
    assert state.expected_at == EXPECTED
    assert state.deadline == DEADLINE
    assert state.signal_at == signal_at
    assert state.lateness_s == (signal_at - EXPECTED).total_seconds()


def test_a_signal_after_the_deadline_is_late():
    state = state_of([opened(), signal(DEADLINE + timedelta(seconds=1))])

    assert state.state == State.LATE
    assert state.lateness_s == 30 * 60 + 1


def test_a_signal_after_the_deadline_missed_fact_without_fallback_is_late():
    state = state_of([opened(), missed(), signal(at(2, 9))])

    assert state.state == State.LATE
    assert state.lateness_s == 3 * 3600


def test_a_signal_after_a_fallback_is_caught_up():
    state = state_of([opened(), missed(), fell_back(snapshot_id=777), signal(at(2, 9))])

    assert state.state == State.CAUGHT_UP
    assert state.fallback_snapshot == 777
    assert state.lateness_s == 3 * 3600


def test_the_deadline_missed_without_a_decision_yet_is_late():
    assert state_of([opened(), missed()]).state == State.LATE


def test_no_fallback_and_no_signal_is_missed():
    state = state_of([opened(), missed(), no_fallback()])

    assert state.state == State.MISSED
    assert state.signal_at is None
    assert state.lateness_s is None
    assert state.fallback_snapshot is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (DEADLINE + timedelta(seconds=10), State.STALE),
        (DEADLINE + timedelta(hours=72), State.STALE),
        (DEADLINE + timedelta(hours=72, seconds=1), State.MISSED),
        (DEADLINE + timedelta(days=30), State.MISSED),
    ],
    ids=["just fell back", "at give-up", "after give-up", "long after"],
)
def test_a_fallback_without_a_signal_is_stale_until_give_up(now, expected):
    state = state_of([opened(), missed(), fell_back(snapshot_id=5)], now)

    assert state.state == expected
    assert state.fallback_snapshot == 5


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(2, 5), State.OPEN),
        (DEADLINE, State.OPEN),
        (DEADLINE + timedelta(microseconds=1), State.OVERDUE),
        (at(4, 0), State.OVERDUE),
    ],
    ids=["before expected", "at deadline", "just after deadline", "days after"],
)
def test_without_a_signal_the_window_is_open_until_its_deadline_then_overdue(now, expected):
    assert state_of([opened()], now).state == expected


def test_a_window_opened_by_hand_runs_on_its_own_clock():
    by_hand = opened(when=at(3, 10), scheduled=False)

    assert state_of([by_hand], at(3, 10, 29)).state == State.OPEN
    assert state_of([by_hand], at(3, 10, 31)).state == State.OVERDUE
    late = state_of([by_hand, signal(at(3, 10, 45))], at(3, 11))
    assert late.state == State.LATE
    assert late.lateness_s == 45 * 60


def test_the_earliest_signal_counts():
    facts = [signal(at(2, 9)), opened(), signal(at(2, 6, 10)), signal(at(2, 7))]

    state = state_of(facts)

    assert state.state == State.ON_TIME
    assert state.signal_at == at(2, 6, 10)
    assert state.lateness_s == 600


def test_the_fold_does_not_depend_on_the_order_of_facts():
    facts = [
        opened(),
        missed(),
        fell_back(snapshot_id=9),
        fact(Fact.ALERT_SENT, at(2, 6, 31)),
        signal(at(2, 10)),
        signal(at(2, 11)),
        fact(Fact.RESOLVED, at(2, 10, 5)),
    ]
    reference = state_of(facts)
    shuffler = random.Random(7)

    for _ in range(10):
        shuffled = facts[:]
        shuffler.shuffle(shuffled)
        assert state_of(shuffled) == reference
    assert reference.state == State.CAUGHT_UP
    assert reference.signal_at == at(2, 10)


def test_alerts_sent_are_counted_and_failed_ones_are_not():
    facts = [
        opened(),
        missed(),
        no_fallback(),
        fact(Fact.ALERT_FAILED, at(2, 6, 31)),
        fact(Fact.ALERT_SENT, at(2, 6, 32)),
        fact(Fact.ALERT_SENT, at(2, 6, 40)),
    ]

    assert state_of(facts).alerts == 2


def test_the_state_lists_the_distinct_kinds_of_fact_seen():
    facts = [opened(), signal(at(2, 6, 5)), signal(at(2, 6, 9)), fact(Fact.ALERT_SENT, at(2, 7))]

    state = state_of(facts)

    assert sorted(state.facts) == sorted({Fact.OPENED, Fact.SIGNAL, Fact.ALERT_SENT})
    assert len(state.facts) == 3
    assert state.dataset == DATASET and state.window == WINDOW.key


def test_states_folds_each_window_of_the_contracts_dataset_oldest_first():
    w0, w2 = Window(date(2024, 4, 30)), Window(date(2024, 5, 2))
    facts = [
        opened(w2),
        signal(at(2, 6, 1)),
        opened(w0),
        opened(WINDOW),
        signal(at(1, 6, 45), w0),
        sla.SlaFact("silver.flights", "2024-04-29", Fact.SIGNAL, at(1, 1)),
    ]

    result = sla.states(CONTRACT, facts, at(3, 6, 10))

    assert [s.window for s in result] == ["2024-04-30", "2024-05-01", "2024-05-02"]
    assert [s.state for s in result] == [State.LATE, State.ON_TIME, State.OPEN]
    assert {s.dataset for s in result} == {DATASET}


def test_states_of_no_facts_is_empty():
    assert sla.states(CONTRACT, [], NOW) == []


# --- opening ----------------------------------------------------------------------------------


def test_a_scheduled_opening_uses_the_contracts_clock():
    moment = EXPECTED + timedelta(seconds=3)  # the scheduled run starts a little after its time

    fact_ = sla.opening(CONTRACT, WINDOW, moment, scheduled=True)

    assert fact_.kind == Fact.OPENED
    assert (fact_.dataset, fact_.window) == (DATASET, "2024-05-01")
    assert fact_.at == moment
    assert fact_.expected_at == EXPECTED
    assert fact_.deadline == DEADLINE


def test_an_opening_by_hand_starts_the_clock_now():
    moment = at(7, 14, 3)

    fact_ = sla.opening(CONTRACT, WINDOW, moment, scheduled=False)

    assert fact_.at == moment
    assert fact_.expected_at == moment
    assert fact_.deadline == moment + timedelta(minutes=30)


# --- the fallback decision --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("present", "source"),
    [
        ({date(2024, 4, 30), date(2024, 4, 29)}, date(2024, 4, 30)),
        ({date(2024, 4, 29), date(2024, 4, 10)}, date(2024, 4, 29)),
        ({date(2024, 5, 1), date(2024, 4, 30)}, date(2024, 5, 1)),
        ({date(2024, 4, 30), date(2024, 5, 2), date(2024, 5, 9)}, date(2024, 4, 30)),
    ],
    ids=["newest of two", "at max age", "the window itself", "never from the future"],
)
def test_the_fallback_is_the_newest_usable_window(present, source):
    decision = sla.decide_fallback(CONTRACT, WINDOW, 1234, present)

    assert decision == sla.Fallback(1234, source)


def test_no_good_snapshot_is_no_fallback():
    decision = sla.decide_fallback(CONTRACT, WINDOW, None, {date(2024, 4, 30)})

    assert isinstance(decision, sla.NoFallback)
    assert DATASET in decision.reason
    assert "last-known-good" in decision.reason


def test_nothing_within_max_age_is_no_fallback_naming_the_age_and_the_newest_window():
    decision = sla.decide_fallback(CONTRACT, WINDOW, 1234, {date(2024, 4, 28), date(2024, 4, 2), date(2024, 5, 3)})

    assert isinstance(decision, sla.NoFallback)
    assert "2 days" in decision.reason
    assert "2024-05-03" in decision.reason  # the newest window in the snapshot
    assert "1234" in decision.reason
    assert DATASET in decision.reason
    assert "2024-05-01" in decision.reason


def test_an_empty_good_snapshot_is_no_fallback():
    decision = sla.decide_fallback(with_terms(CONTRACT, max_fallback_age=timedelta(hours=36)), WINDOW, 1234, set())

    assert isinstance(decision, sla.NoFallback)
    assert "1.5 days" in decision.reason
    assert "newest: none" in decision.reason


# --- messages ---------------------------------------------------------------------------------


def _missed_state() -> sla.WindowState:
    return state_of([opened(), missed()])


def test_the_alert_with_a_fallback_says_what_runs_on_what():
    now = DEADLINE + timedelta(seconds=20)

    subject, body = sla.alert(
        CONTRACT, _missed_state(), now, sla.Fallback(6_276_331_655_825_089_302, date(2024, 4, 30))
    )

    assert DATASET in subject and "2024-05-01" in subject
    for text in (
        DATASET,
        "2024-05-01",
        CONTRACT.producer,
        CONTRACT.owner,
        CONTRACT.consumer,
        EXPECTED.isoformat(timespec="seconds"),
        DEADLINE.isoformat(timespec="seconds"),
        "late by at least 1820 s",
        "6276331655825089302",
        "2024-04-30",
        "stale",
    ):
        assert text in body, text


def test_the_alert_without_a_fallback_gives_the_reason():
    reason = "last-known-good snapshot 1 of bronze.flights holds no window within 2 days before 2024-05-01"

    subject, body = sla.alert(CONTRACT, _missed_state(), DEADLINE + timedelta(minutes=1), sla.NoFallback(reason))

    assert "missed" in subject
    assert reason in body
    assert "not run" in body
    assert CONTRACT.owner in body and CONTRACT.producer in body
    assert "late by at least 1860 s" in body
    assert "snapshot 1 " in body


def test_the_alert_of_a_window_with_no_clock_says_unknown():
    unwatched = state_of([fact(Fact.DEADLINE_MISSED, DEADLINE)])

    _, body = sla.alert(CONTRACT, unwatched, DEADLINE, sla.NoFallback("x"))

    assert "late by unknown" in body
    assert "Expected at unknown, deadline unknown" in body


def test_the_resolution_names_the_fresh_and_the_stale_snapshots():
    caught_up = state_of([opened(), missed(), fell_back(snapshot_id=111), signal(at(2, 8, 0, 30))])

    subject, body = sla.resolution(CONTRACT, caught_up, 222, "silver.flights")

    assert "caught up" in subject and DATASET in subject and "2024-05-01" in subject
    assert "7230 s" in body
    assert "silver.flights snapshot 222" in body
    assert "snapshot 111" in body
    assert DATASET in body


# --- lateness percentiles ---------------------------------------------------------------------


def _signalled(days_and_seconds: list[tuple[int, float]]) -> list[sla.SlaFact]:
    facts = []
    for day, seconds in days_and_seconds:
        window = Window(date(2024, 4, day))
        facts += [opened(window), signal(CONTRACT.expected_time(window) + timedelta(seconds=seconds), window)]
    return facts


def test_lateness_p50_and_p95_over_watched_windows():
    lateness = [600.0, -120.0, 30.0, 7200.0, 45.0, 0.0, 900.0]
    facts = _signalled(list(zip(range(1, 8), lateness, strict=True)))
    facts += [signal(at(1, 1), Window(date(2024, 4, 20)))]  # unwatched: no clock, not counted
    facts += [opened(Window(date(2024, 4, 21)))]  # no signal yet: not counted

    count, p50, p95 = sla.lateness(facts, CONTRACT, at(9, 0))

    assert count == 7
    assert p50 == pytest.approx(np.percentile(lateness, 50))
    assert p95 == pytest.approx(np.percentile(lateness, 95))
    assert p50 == 45.0


def test_lateness_of_four_windows_interpolates():
    count, p50, p95 = sla.lateness(_signalled([(1, 10), (2, 20), (3, 30), (4, 40)]), CONTRACT, at(9, 0))

    assert (count, p50, p95) == (4, pytest.approx(25.0), pytest.approx(38.5))


def test_lateness_of_one_window_is_that_window():
    assert sla.lateness(_signalled([(3, 75)]), CONTRACT, at(9, 0)) == (1, 75.0, 75.0)


def test_lateness_of_no_watched_window_is_none():
    assert sla.lateness([signal(at(2, 7)), opened()], with_terms(CONTRACT, dataset="silver.flights"), NOW) is None
    assert sla.lateness([signal(at(2, 7))], CONTRACT, NOW) is None


# --- the facts table --------------------------------------------------------------------------


def _sla_snapshots(catalog) -> list[int]:
    return [s.snapshot_id for s in catalog.load_table(SLA_FACTS.identifier).snapshots()]


def _key(fact_: sla.SlaFact):
    return (fact_.window, fact_.kind, fact_.at)


def _assert_utc(fact_: sla.SlaFact) -> None:
    for name in ("at", "expected_at", "deadline"):
        value = getattr(fact_, name)
        if value is not None:
            assert isinstance(value, datetime), name
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0), (name, value)


def test_reading_an_empty_facts_table_is_no_facts(catalog):
    assert sla.read(catalog) == []
    assert sla.read(catalog, DATASET, WINDOW.key) == []


def test_recording_nothing_commits_nothing(catalog):
    sla.record(catalog, [], MADE_BY)

    assert _sla_snapshots(catalog) == []


def test_a_fact_with_every_field_round_trips(catalog):
    full = sla.SlaFact(
        dataset=DATASET,
        window=WINDOW.key,
        kind=Fact.FALLBACK,
        at=datetime(2024, 5, 2, 6, 30, 5, 123456, tzinfo=UTC),
        expected_at=EXPECTED,
        deadline=DEADLINE,
        snapshot_id=6_276_331_655_825_089_302,
        source_window="2024-04-30",
        lateness_s=1805.123456,
        detail="consumer run 0b0e5c3e",
        flow_run_id="flow-run-7",
    )

    sla.record(catalog, [full], MADE_BY)

    [back] = sla.read(catalog, DATASET, WINDOW.key)
    assert back == full
    assert type(back.snapshot_id) is int
    assert type(back.kind) is Fact
    _assert_utc(back)


def test_timestamps_in_another_zone_come_back_as_the_same_instant_in_utc(catalog):
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2024, 5, 2, 8, 15, tzinfo=plus_two)

    sla.record(catalog, [fact(Fact.SIGNAL, moment)], MADE_BY)

    [back] = sla.read(catalog)
    assert back.at == moment
    assert back.at.utcoffset() == timedelta(0)
    assert back.at.replace(tzinfo=None) == datetime(2024, 5, 2, 6, 15)


def test_a_windows_lifecycle_round_trips_with_its_real_snapshot_ids(catalog, drop_day):
    """Facts without a snapshot id sit beside facts with one: the ids must come back exact."""
    # pyiceberg's snapshot ids are random 63-bit numbers: almost always beyond a float's 53-bit mantissa
    good = ingest_bronze(catalog, drop_day(DAY_A), pipeline.RunInfo("run-1", "test")).snapshot_id
    lifecycle = [
        opened(),
        missed(),
        fell_back(snapshot_id=good),
        fact(Fact.ALERT_SENT, DEADLINE + timedelta(seconds=7), detail="[lakeops] missed"),
        signal(at(2, 9)),
        fact(Fact.RESOLVED, at(2, 9, 5), snapshot_id=good, detail="fresh"),
    ]

    sla.record(catalog, lifecycle, MADE_BY)

    back = sorted(sla.read(catalog, DATASET, WINDOW.key), key=_key)
    assert back == sorted(lifecycle, key=_key)
    for fact_ in back:
        _assert_utc(fact_)
        assert fact_.snapshot_id is None or type(fact_.snapshot_id) is int
    state = sla.window_state(CONTRACT, WINDOW.key, back, at(2, 10))
    assert state.state == State.CAUGHT_UP
    assert state.fallback_snapshot == good
    assert catalog.load_table(BRONZE_FLIGHTS.identifier).snapshot_by_id(state.fallback_snapshot) is not None


def test_a_large_snapshot_id_beside_a_missing_one_comes_back_exact(catalog):
    big = 6_276_331_655_825_089_302
    facts = [opened(), fell_back(snapshot_id=big)]

    sla.record(catalog, facts, MADE_BY)

    [back] = [f for f in sla.read(catalog) if f.kind == Fact.FALLBACK]
    assert back.snapshot_id == big


def test_appends_from_two_calls_are_both_kept(catalog):
    first, second = opened(), signal(at(2, 6, 10))

    sla.record(catalog, [first], MADE_BY)
    sla.record(catalog, [second], MADE_BY)

    assert len(_sla_snapshots(catalog)) == 2
    assert sorted(sla.read(catalog, DATASET, WINDOW.key), key=_key) == sorted([first, second], key=_key)
    assert sla.window_state(CONTRACT, WINDOW.key, sla.read(catalog), NOW).state == State.ON_TIME


def test_read_filters_by_dataset_and_window(catalog):
    other_window = Window(date(2024, 5, 2))
    other_dataset = sla.SlaFact("silver.flights", WINDOW.key, Fact.SIGNAL, at(2, 7))
    facts = [opened(), opened(other_window), signal(at(3, 6, 1), other_window), other_dataset]
    sla.record(catalog, facts, MADE_BY)

    assert len(sla.read(catalog)) == 4
    assert sorted(sla.read(catalog, DATASET), key=_key) == sorted(facts[:3], key=_key)
    assert sla.read(catalog, DATASET, WINDOW.key) == [facts[0]]
    assert sla.read(catalog, "silver.flights") == [other_dataset]
    assert sla.read(catalog, DATASET, "2024-04-01") == []
    assert {f.dataset for f in sla.read(catalog, None, WINDOW.key)} == {DATASET, "silver.flights"}


def test_the_facts_commit_carries_its_provenance(catalog):
    sla.record(catalog, [opened()], MADE_BY)

    snapshot = catalog.load_table(SLA_FACTS.identifier).current_snapshot()
    assert lake.provenance_of(snapshot) == MADE_BY
