"""Blue-green releases as deployments on a real server: each gate path, the switch, rollback, a live reader."""

import threading
from datetime import date

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from admin import releases
from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.datasets.windows import Window
from lakeops.release import promotion, release_log
from lakeops.release.fingerprint import fingerprint
from lakeops.release.release_log import Event
from tests.e2e.conftest import GOLD_DAILY_DELAYS, SILVER_FLIGHTS

FLIGHTS = "flights"  # the dataset released: its release log, live version and deployments are named after it

pytestmark = pytest.mark.e2e

DAYS = [date(2013, 4, 1), date(2013, 4, 2)]
NEXT_DAY = date(2013, 4, 3)  # landed by the pipeline while a release waits for its decision
SILVER, GOLD = SILVER_FLIGHTS.identifier, GOLD_DAILY_DELAYS.identifier
WITHIN = {"max_changed_fraction": 1.0, "mean_tolerance": 10.0}  # v2's Gold change counts as within


@pytest.fixture(scope="module")
def days(e2e) -> list[date]:
    for day in DAYS:
        landing.drop_day_file(e2e.landing, day)
        e2e.follow(day, e2e.run_producer(day))
    return DAYS


def release_params(green: str, **extra: object) -> dict:
    return {
        "dataset": FLIGHTS,
        "green_version": green,
        "start": DAYS[0].isoformat(),
        "end": DAYS[-1].isoformat(),
        **extra,
    }


def run_release(green: str, **extra: object):  # noqa: ANN201 - a FlowRun
    params = {"params": release_params(green, **extra)}
    return run_deployment(releases.release_deployment(FLIGHTS), parameters=params, timeout=300, poll_interval=0.5)


def start_and_hold(green: str, **extra: object):  # noqa: ANN201 - the paused FlowRun
    run = releases.wait_until_settled(releases.start(release_params(green, **extra)).id, timeout=300)
    assert run.state.is_paused(), f"{run.state.name}: {run.state.message}"
    return run


def main_ids(e2e) -> dict[str, int]:
    return {name: e2e.catalog.load_table(name).current_snapshot().snapshot_id for name in (SILVER, GOLD)}


def plain_scan(e2e, name: str):  # noqa: ANN201 - what any Iceberg reader sees, no lakeops code
    return e2e.catalog.load_table(name).scan().to_arrow()


def the_release(e2e, run) -> release_log.Release:  # noqa: ANN001
    found = [r for r in release_log.releases(e2e.catalog, FLIGHTS) if r.flow_run_id == str(run.id)]
    assert len(found) == 1
    return found[0]


def on_next_day(gold):  # noqa: ANN001, ANN201 - a pandas frame of Gold rows
    return gold[gold["flight_date"] == NEXT_DAY]


def finish(run_id, timeout: float = 120):  # noqa: ANN001, ANN201
    run = releases.wait_until_settled(run_id, timeout)
    assert run.state.is_final(), run.state.name
    return run


def test_an_identical_refactor_is_promoted_then_rolled_back_by_its_deployment(e2e, days) -> None:
    before, rows_before = main_ids(e2e), plain_scan(e2e, SILVER)
    run = run_release("v1.1")
    assert run.state.is_completed() and run.state.name == "Promoted", run.state.message

    done = the_release(e2e, run)
    assert [e.event for e in done.entries] == [Event.STARTED, Event.COMPARED, Event.PROMOTED]
    assert done.verdict == "identical" and done.last(Event.PROMOTED).actor == "automatic"
    assert done.first.windows and set(done.first.windows) == {d.isoformat() for d in days}
    silver = e2e.catalog.load_table(SILVER)  # plain pyiceberg: main is the sealed green snapshot
    summary = silver.current_snapshot().summary.additional_properties
    assert summary["lakeops.release.id"] == done.release_id and summary["lakeops.release.verdict"] == "identical"
    assert silver.properties["lakeops.release.version"] == "v1.1"
    assert fingerprint(plain_scan(e2e, SILVER)) == fingerprint(rows_before)
    assert release_log.live_version(e2e.catalog, FLIGHTS) == "v1.1"
    assert not [r for r in silver.metadata.refs if r.startswith("release-")]  # colours' branches dropped
    with get_client(sync_client=True) as client:
        artifacts = [a for a in client.read_artifacts() if a.flow_run_id == run.id]
    assert {a.type for a in artifacts} >= {"table", "markdown"}

    back = run_deployment(
        releases.rollback_deployment(FLIGHTS),
        parameters={"params": {"dataset": FLIGHTS, "reason": "e2e"}},
        timeout=120,
        poll_interval=0.5,
    )
    assert back.state.is_completed(), back.state.message
    assert main_ids(e2e) == before
    assert release_log.live_version(e2e.catalog, FLIGHTS) is None


def test_a_change_within_thresholds_is_promoted_and_plain_readers_see_green(e2e, days) -> None:
    before = main_ids(e2e)
    blue_gold = plain_scan(e2e, GOLD)
    run = run_release("v2", thresholds=WITHIN)
    assert run.state.name == "Promoted", run.state.message
    done = the_release(e2e, run)
    assert done.verdict == "within thresholds"

    green_gold = plain_scan(e2e, GOLD).to_pandas()
    window = green_gold[green_gold["flight_date"] == days[0]]
    blue_window = blue_gold.to_pandas()
    blue_window = blue_window[blue_window["flight_date"] == days[0]]
    assert window["cancelled"].sum() > blue_window["cancelled"].sum()  # v2 counts diverted flights

    promotion.rollback(e2e.catalog, e2e.flights, "e2e", "done")
    assert main_ids(e2e) == before and fingerprint(plain_scan(e2e, GOLD)) == fingerprint(blue_gold)


def test_a_change_outside_thresholds_is_held_alerted_and_rejected(e2e, days) -> None:
    before = main_ids(e2e)
    run = start_and_hold("v2")
    held = the_release(e2e, run)
    assert held.status == Event.HELD and held.verdict == "outside thresholds"
    alert = e2e.receiver.wait_for(f"release {held.release_id}", timeout=30)
    assert "cancelled" in alert.body and "lakeops release approve flights" in alert.body

    releases.decide(e2e.catalog, FLIGHTS, approve=False, reason="v2 needs sign-off from finance", by="e2e-reviewer")
    run = finish(run.id)
    assert run.state.name == "Rejected", run.state.message
    assert main_ids(e2e) == before
    rejected = the_release(e2e, run)
    assert rejected.status == Event.REJECTED and rejected.entries[-1].actor == "e2e-reviewer"
    assert rejected.entries[-1].reason == "v2 needs sign-off from finance"


class Reader(threading.Thread):
    """A consumer scanning Gold with plain pyiceberg in a tight loop; remembers what it saw."""

    def __init__(self, e2e) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.e2e, self.seen, self.errors, self.stop = e2e, [], [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.seen.append(fingerprint(plain_scan(self.e2e, GOLD)))
            except Exception as exc:  # every error is a finding
                self.errors.append(repr(exc))


def test_held_then_approved_switches_both_tables_and_a_live_reader_never_sees_a_mix(e2e, days) -> None:
    before = main_ids(e2e)
    blue = fingerprint(plain_scan(e2e, GOLD))
    run = start_and_hold("v2")
    reader = Reader(e2e)
    reader.start()
    releases.decide(e2e.catalog, FLIGHTS, approve=True, reason="diverted flights count as cancelled", by="e2e")
    run = finish(run.id)
    assert run.state.name == "Promoted", run.state.message
    green = fingerprint(plain_scan(e2e, GOLD))
    promoted = the_release(e2e, run)
    assert promoted.last(Event.APPROVED).actor == "e2e" and promoted.status == Event.PROMOTED
    assert main_ids(e2e) == promoted.last(Event.PROMOTED).target

    promotion.rollback(e2e.catalog, e2e.flights, "e2e", "rolled back under a live reader")
    scans_before_stop = len(reader.seen)
    while len(reader.seen) < scans_before_stop + 3:
        threading.Event().wait(0.05)
    reader.stop.set()
    reader.join(timeout=30)

    assert reader.errors == []
    assert set(reader.seen) <= {blue, green}, "a scan saw a state that is neither colour"
    assert green in reader.seen and reader.seen[-1] == blue
    assert main_ids(e2e) == before


def test_a_day_the_pipeline_lands_during_the_hold_is_caught_up_held_for_and_promoted_with_the_rest(e2e, days) -> None:
    run = start_and_hold("v2")
    held = the_release(e2e, run)
    # While the release waits for its decision, the daily pipeline lands the next day on main.
    landing.drop_day_file(e2e.landing, NEXT_DAY)
    e2e.follow(NEXT_DAY, e2e.run_producer(NEXT_DAY))
    caught_up_base = main_ids(e2e)

    releases.decide(e2e.catalog, FLIGHTS, approve=True, reason="diverted flights count as cancelled", by="e2e")
    run = releases.wait_until_settled(run.id, timeout=300)
    # The new day differs too (v2's rule), and no one has seen it: held again, for that day only.
    assert run.state.is_paused(), f"{run.state.name}: {run.state.message}"
    again = the_release(e2e, run)
    assert [e.event for e in again.entries[len(held.entries) :]] == [Event.APPROVED, Event.CAUGHT_UP, Event.HELD]
    assert NEXT_DAY.isoformat() in again.last(Event.CAUGHT_UP).reason
    assert again.last(Event.CAUGHT_UP).base == caught_up_base
    alert = e2e.receiver.wait_for(f"{NEXT_DAY}..{NEXT_DAY} (caught up", timeout=30)
    assert f"release {held.release_id}" in alert.subject

    releases.decide(e2e.catalog, FLIGHTS, approve=True, reason="same rule on the new day", by="e2e-2")
    run = finish(run.id)
    assert run.state.name == "Promoted" and "after 1 catch-up round" in run.state.message, run.state.message
    promoted = the_release(e2e, run).last(Event.PROMOTED)
    assert promoted.actor == "e2e-2" and promoted.base == caught_up_base and NEXT_DAY.isoformat() in promoted.windows
    green_day = on_next_day(plain_scan(e2e, GOLD).to_pandas())
    blue_day = on_next_day(e2e.catalog.load_table(GOLD).scan(snapshot_id=caught_up_base[GOLD]).to_pandas())
    assert len(green_day) == len(blue_day) == 3  # the promoted green did not drop the day main gained
    assert green_day["cancelled"].sum() > blue_day["cancelled"].sum()  # built with v2: diverted counts as cancelled

    promotion.rollback(e2e.catalog, e2e.flights, "e2e", "done")
    assert main_ids(e2e) == caught_up_base  # blue again, with the day main gained


def test_with_no_catch_up_allowed_a_base_moved_during_the_hold_fails_the_release(e2e, days) -> None:
    before = main_ids(e2e)
    run = start_and_hold("v2", max_catch_up_rounds=0)
    # While the release waits, Gold's main moves under it (a concurrent rebuild of one window).
    concurrent = pipeline.build(
        e2e.catalog,
        e2e.registry,
        "flights.gold",
        Window(days[0]),
        {"flights.silver": before[SILVER]},
        pipeline.RunInfo("e2e-concurrent", "e2e"),
    )
    releases.decide(e2e.catalog, FLIGHTS, approve=True, reason="approve, then lose the race", by="e2e")
    run = finish(run.id)

    assert run.state.is_failed()
    assert "the base kept moving" in run.state.message and GOLD in run.state.message
    assert main_ids(e2e) == {SILVER: before[SILVER], GOLD: concurrent.snapshot_id}  # nothing switched
    failed = the_release(e2e, run)
    assert failed.status == Event.FAILED and "max_catch_up_rounds" in failed.entries[-1].reason
    assert release_log.live_version(e2e.catalog, FLIGHTS) is None
