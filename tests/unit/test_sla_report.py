"""lakeops.sla_report: the `lakeops sla list` text and the watcher of the window-opening schedule."""

from datetime import date, time

from lakeops.datasets.windows import Window
from lakeops.readiness import sla, sla_report
from lakeops.readiness.sla import Fact

from .sla_helpers import (
    CONTRACT,
    DATASET,
    MADE_BY,
    WINDOW,
    at,
    fact,
    fell_back,
    missed,
    opened,
    signal,
    with_terms,
)

W0 = Window(date(2024, 4, 30))
W2 = Window(date(2024, 5, 2))


def _line(text: str, start: str) -> str:
    [line] = [line for line in text.splitlines() if line.strip().startswith(start)]
    return line


# --- the watcher ------------------------------------------------------------------------------


def test_the_watcher_with_no_opening_at_all_says_so():
    line = sla_report.watcher(CONTRACT, [signal(at(2, 6, 5))], at(3, 7))

    assert "no window was ever opened on schedule" in line
    assert "2024-05-02" in line  # the last window due


def test_openings_by_hand_do_not_count_as_the_schedule():
    by_hand = [opened(WINDOW, at(2, 9), scheduled=False), opened(W2, at(3, 5), scheduled=False)]

    line = sla_report.watcher(CONTRACT, by_hand, at(3, 7))

    assert "no window was ever opened on schedule" in line


def test_the_watcher_is_ok_when_the_last_due_window_was_opened():
    facts = [opened(W0), opened(WINDOW)]

    line = sla_report.watcher(CONTRACT, facts, at(3, 5, 59))  # May 2nd's window is not due before 06:00

    assert line.startswith("watcher: ok")
    assert "2024-05-01" in line
    assert "OVERDUE" not in line


def test_the_watcher_is_overdue_once_a_due_window_was_not_opened():
    facts = [opened(W0), opened(WINDOW)]

    line = sla_report.watcher(CONTRACT, facts, at(3, 6))

    assert "OVERDUE" in line
    assert "2024-05-01" in line and "2024-05-02" in line


def test_a_newer_window_opened_by_hand_does_not_hide_a_stopped_schedule():
    facts = [opened(WINDOW), opened(W2, at(3, 9), scheduled=False)]

    assert "OVERDUE" in sla_report.watcher(CONTRACT, facts, at(3, 10))


def test_the_watcher_reads_only_its_contracts_dataset():
    other = with_terms(CONTRACT, dataset="silver.flights")
    facts = [opened(W2)]  # bronze.flights opened May 2nd on schedule

    assert "no window was ever opened on schedule" in sla_report.watcher(other, facts, at(3, 7))
    assert sla_report.watcher(CONTRACT, facts, at(3, 7)).startswith("watcher: ok")


def test_the_watcher_follows_the_contracts_expected_time():
    """An opening at another contract's clock (e.g. before the time changed) is not on schedule."""
    moved = with_terms(CONTRACT, expected_at=time(7, 0))

    assert "no window was ever opened on schedule" in sla_report.watcher(moved, [opened(W2)], at(3, 8))


def test_the_watcher_recognises_openings_read_back_from_the_catalog(catalog):
    sla.record(catalog, [opened(W0), opened(WINDOW)], MADE_BY)

    facts = sla.read(catalog)

    assert sla_report.watcher(CONTRACT, facts, at(2, 7)).startswith("watcher: ok")
    assert "OVERDUE" in sla_report.watcher(CONTRACT, facts, at(3, 7))


# --- the report -------------------------------------------------------------------------------


def test_the_report_shows_the_contract_each_window_and_the_watcher():
    facts = [
        opened(W0),
        signal(at(1, 6, 10), W0),  # on time, 600 s late
        opened(WINDOW),
        missed(),
        fell_back(snapshot_id=4242),
        fact(Fact.ALERT_SENT, at(2, 6, 31)),
        opened(W2),
    ]

    text = sla_report.render([CONTRACT], facts, at(3, 6, 5))

    header = text.splitlines()[0]
    for part in (
        DATASET,
        CONTRACT.producer,
        CONTRACT.consumer,
        CONTRACT.owner,
        "06:00 UTC",
        "1800 s",
        "2 days",
        CONTRACT.alert_block,
    ):
        assert part in header, part
    on_time = _line(text, "2024-04-30")
    assert "on time" in on_time and "600.0" in on_time and "2024-05-01 06:10:00" in on_time
    stale = _line(text, "2024-05-01")
    assert "stale fallback used" in stale and "4242" in stale
    assert stale.split()[-2:] == ["1", "4242"]  # one alert sent, the fallback snapshot
    assert "open" in _line(text, "2024-05-02").split()
    assert "lateness over 1 watched windows: p50 600.0 s, p95 600.0 s" in text
    assert text.splitlines()[-1].strip() == "watcher: ok, the newest window opened on schedule is 2024-05-02"


def test_the_report_of_a_contract_without_facts():
    text = sla_report.render([CONTRACT], [], at(3, 7))

    assert "(no window opened or signalled yet)" in text
    assert "lateness over" not in text
    assert "no window was ever opened on schedule" in text.splitlines()[-1]


def test_the_report_has_one_section_per_contract_with_its_own_watcher():
    silver = with_terms(CONTRACT, dataset="silver.flights", expected_at=time(7, 0))
    facts = [opened(WINDOW), signal(at(2, 7))]  # bronze.flights, late by an hour

    text = sla_report.render([CONTRACT, silver], facts, at(2, 8))

    lines = text.splitlines()
    silver_at = next(i for i, line in enumerate(lines) if line.startswith("silver.flights"))
    bronze, silver_section = "\n".join(lines[:silver_at]), "\n".join(lines[silver_at:])
    assert "late" in _line(bronze, "2024-05-01").split()
    assert "3600.0" in _line(bronze, "2024-05-01")
    assert "watcher: ok" in bronze
    assert "2024-05-01" not in silver_section.split("watcher")[0]
    assert "(no window opened or signalled yet)" in silver_section
    assert "no window was ever opened on schedule" in silver_section


def test_the_report_shows_an_overdue_window_and_watcher():
    text = sla_report.render([CONTRACT], [opened(WINDOW)], at(3, 6, 31))

    assert "overdue" in _line(text, "2024-05-01")
    assert "watcher: OVERDUE" in text


def test_the_report_flags_an_unwatched_window():
    text = sla_report.render([CONTRACT], [opened(WINDOW), signal(at(3, 6, 1), W2)], at(3, 7))

    assert "unwatched" in _line(text, "2024-05-02")
    assert "watcher: OVERDUE" in text  # the signal came but the schedule never opened 2024-05-02
