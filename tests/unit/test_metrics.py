"""Platform metrics from known run facts: every figure exact, and the edge cases the definitions name."""

from datetime import UTC, date, datetime, timedelta

import pytest

from lakeops.metrics import cost, reliability, velocity
from lakeops.metrics.facts import Outcome, RunFact

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SILVER = "build-layer/silver.flights"
GOLD = "build-layer/gold.daily_delays"


def run(
    unit: str,
    outcome: Outcome,
    due: datetime,
    deployment: str = SILVER,
    dataset: str | None = "flights",
    seconds: float = 60,
    **more,
) -> RunFact:
    started = more.pop("started", due)
    return RunFact(
        flow_run_id=f"{deployment}-{unit}-{due.isoformat()}-{outcome.value}",
        deployment=deployment,
        dataset=dataset,
        unit=unit,
        outcome=outcome,
        expected_start=due,
        started=started,
        ended=started + timedelta(seconds=seconds) if started else None,
        **more,
    )


def test_outcomes_from_state_types():
    assert Outcome.of_state("Completed") is Outcome.COMPLETED
    assert Outcome.of_state("TIMEDOUT") is Outcome.FAILED
    assert Outcome.of_state("CRASHED") is Outcome.CRASHED
    assert Outcome.of_state("RUNNING") is None and Outcome.of_state("PAUSED") is None


def test_no_runs_gives_no_rate_and_a_whole_budget():
    figures = reliability.reliability([], NOW, 28 * DAY)
    assert (figures.units, figures.success_rate, figures.burn_rate, figures.budget_left) == (0, None, 0.0, 1.0)
    assert figures.meets_objective is None
    assert reliability.burn_alerts([], NOW) == []


def test_every_run_failed():
    facts = [run(f"w{i}", Outcome.FAILED, NOW - i * DAY - timedelta(hours=1)) for i in range(4)]
    figures = reliability.reliability(reliability.units_of(facts), NOW, 7 * DAY)
    assert (figures.units, figures.succeeded, figures.failed, figures.success_rate) == (4, 0, 4, 0.0)
    assert figures.burn_rate == pytest.approx(200.0)  # 100% failures over the 0.5% the objective allows
    assert figures.budget_left == pytest.approx(-199.0)


def test_a_healed_crash_counts_once_as_recovered_and_cancelled_runs_count_neither_way():
    due = NOW - 2 * DAY
    facts = [
        run("2026-11-28", Outcome.CRASHED, due),  # out of memory
        run("2026-11-28", Outcome.COMPLETED, due + timedelta(minutes=2)),  # the healer's re-run, doubled memory
        run("2026-11-27", Outcome.COMPLETED, due - DAY),
        run("2026-11-26", Outcome.COMPLETED, due - 2 * DAY, attempts=2),  # a task retried inside the run
        run("2026-11-25", Outcome.CANCELLED, due - 3 * DAY),  # stopped by a person: not counted
        run("2026-11-24", Outcome.COMPLETED, due - 4 * DAY, stale=True),  # built on last good data
        run("2026-11-23", Outcome.FAILED, due - 4 * DAY - timedelta(hours=1)),
    ]
    figures = reliability.reliability(reliability.units_of(facts), NOW, 7 * DAY)
    assert (figures.units, figures.succeeded, figures.first_attempt, figures.recovered) == (5, 4, 2, 2)
    assert (figures.failed, figures.stale) == (1, 1)
    assert figures.success_rate == pytest.approx(0.8) and figures.first_attempt_rate == pytest.approx(0.4)
    assert figures.burn_rate == pytest.approx(40.0) and figures.meets_objective is False


def test_a_run_crossing_the_period_boundary_counts_where_it_was_due():
    boundary = NOW - 7 * DAY
    crossing = run("late-night", Outcome.COMPLETED, boundary - timedelta(minutes=5), seconds=600)
    inside = run("next", Outcome.FAILED, boundary + timedelta(minutes=5))
    units = reliability.units_of([crossing, inside])
    week = reliability.reliability(units, NOW, 7 * DAY)
    assert (week.units, week.succeeded) == (1, 0)  # the crossing run was due before the week began
    assert reliability.reliability(units, NOW, 28 * DAY).units == 2


def test_scopes_per_dataset_and_deployment():
    facts = [
        run("a", Outcome.COMPLETED, NOW - DAY),
        run("a", Outcome.FAILED, NOW - DAY, deployment=GOLD),
        run("b", Outcome.COMPLETED, NOW - DAY, deployment="ingest/bronze.weather", dataset="weather"),
    ]
    units = reliability.units_of(facts)
    assert reliability.scopes(units) == [
        "all",
        "dataset:flights",
        "dataset:weather",
        f"deployment:{GOLD}",
        f"deployment:{SILVER}",
        "deployment:ingest/bronze.weather",
    ]
    rates = {s: reliability.reliability(units, NOW, 7 * DAY, s).success_rate for s in reliability.scopes(units)}
    assert rates["all"] == pytest.approx(2 / 3) and rates["dataset:flights"] == 0.5 and rates["dataset:weather"] == 1


def test_the_fast_burn_alert_needs_both_windows_burning():
    recent_failures = [run(f"f{i}", Outcome.FAILED, NOW - timedelta(minutes=i)) for i in range(1, 4)]
    older_successes = [run(f"s{i}", Outcome.COMPLETED, NOW - timedelta(minutes=10 + i)) for i in range(20)]
    alerts = reliability.burn_alerts(reliability.units_of(recent_failures + older_successes), NOW)
    fast = [a for a in alerts if a.rule is reliability.FAST and a.scope == "all"]
    assert len(fast) == 1
    assert fast[0].short_burn == pytest.approx(200.0)  # the last 5 minutes: 3 of 3 failed
    assert fast[0].long_burn == pytest.approx(3 / 23 / 0.005)
    # Failures 40 minutes ago with a clean last half hour page neither fast nor slow: the burn has stopped.
    quiet = [run(f"o{i}", Outcome.FAILED, NOW - timedelta(minutes=40 + i)) for i in range(3)]
    clean = [run(f"c{i}", Outcome.COMPLETED, NOW - timedelta(minutes=i + 1)) for i in range(2)]
    alerts = reliability.burn_alerts(reliability.units_of(quiet + clean), NOW)
    assert alerts == []
    assert reliability.reliability(
        reliability.units_of(quiet + clean), NOW, timedelta(hours=6)
    ).burn_rate == pytest.approx(120)


def test_lead_time_change_failure_and_a_version_that_never_reaches_production():
    committed = {
        "abc": NOW - 10 * timedelta(hours=1),
        "def": NOW - 5 * timedelta(hours=1),
        "never": NOW - timedelta(hours=2),  # deployed, but no run of it has completed
    }
    facts = [
        run("w1", Outcome.COMPLETED, committed["abc"] + timedelta(minutes=20), seconds=600, code_version="abc"),
        run("w2", Outcome.FAILED, committed["def"] + timedelta(minutes=5), code_version="def"),
        run("w2", Outcome.COMPLETED, committed["def"] + timedelta(minutes=50), seconds=600, code_version="def"),
        run("w3", Outcome.FAILED, NOW - timedelta(minutes=30), code_version="never"),
    ]
    changes = {c.name: c for c in velocity.code_changes(facts, committed)}
    assert changes["abc"].lead_time == timedelta(minutes=30) and not changes["abc"].failed
    assert changes["def"].lead_time == timedelta(hours=1) and changes["def"].failed  # its first run failed
    assert changes["never"].production_at is None and changes["never"].lead_time is None

    restores = velocity.restore_times(facts)
    assert restores == [timedelta(minutes=50, seconds=600) - timedelta(minutes=5, seconds=60)]
    figures = velocity.velocity(changes.values(), restores, NOW, 7 * DAY)
    assert (figures.changes, figures.in_production) == (3, 2)
    assert figures.lead_p50 == timedelta(minutes=45)  # the mean of 30 and 60 minutes
    assert figures.lead_p90 == timedelta(minutes=57)
    assert figures.change_failure_rate == 0.5 and figures.per_week == pytest.approx(2.0)
    assert figures.meets_objective is True


def test_a_rolled_back_release_is_a_failed_change_restored_at_its_rollback():
    promoted = NOW - 3 * timedelta(hours=1)
    promotions = [
        velocity.Promotion("r1", "flights", "v2", "abc", promoted, rolled_back_at=promoted + timedelta(minutes=12)),
        velocity.Promotion("r2", "flights", "v1.1", "abc", promoted - DAY),
    ]
    changes = velocity.transform_changes(promotions, {"abc": promoted - DAY - timedelta(minutes=40)})
    assert [(c.name, c.failed) for c in changes] == [("flights@v1.1", False), ("flights@v2", True)]
    assert changes[0].lead_time == timedelta(minutes=40)
    assert velocity.restore_times([], promotions) == [timedelta(minutes=12)]


def test_cost_of_a_run_requested_and_used():
    fargate = cost.Prices()
    requested = {"requested_cpu": 1, "requested_memory_mb": 2048}
    used = {"cpu_seconds": 900, "peak_memory_mb": 512}
    fact = run("w", Outcome.COMPLETED, NOW, seconds=1800, work_pool_type="ecs", **requested, **used)
    priced = cost.run_cost(fact, fargate)
    assert priced.hours == 0.5
    assert priced.requested == pytest.approx(0.5 * (0.04048 + 2 * 0.004445))
    assert priced.used == pytest.approx(0.25 * 0.04048 + 0.5 * 0.5 * 0.004445)
    assert cost.run_cost(run("w", Outcome.CRASHED, NOW, started=None), fargate).requested == 0


def test_cost_per_pipeline_hour_per_week_its_trend_and_the_two_week_rise():
    monday = datetime(2026, 11, 2, 6, tzinfo=UTC)
    per_hour = [1.0, 1.1, 1.3, 1.6]  # price per vCPU-hour rising: each week costs more per pipeline-hour
    facts = [
        run(
            f"w{week}-{i}",
            Outcome.COMPLETED,
            monday + week * 7 * DAY + i * DAY,
            seconds=3600,
            requested_cpu=1,
            requested_memory_mb=0,
            work_pool_type=f"pool-{week}",
        )
        for week in range(4)
        for i in range(3)
    ]
    prices = {f"pool-{w}": cost.Prices(cpu_hour=p, gb_hour=0) for w, p in enumerate(per_hour)}
    weeks = cost.weekly(facts, prices)
    overall = [w for w in weeks if w.scope == "all"]
    assert [w.start for w in overall] == [date(2026, 11, 2) + timedelta(weeks=k) for k in range(4)]
    assert [w.hours for w in overall] == [3.0] * 4
    assert [w.per_pipeline_hour for w in overall] == pytest.approx(per_hour)
    rising = cost.trend(weeks, "dataset:flights")
    assert rising.direction == "up" and rising.rising_two_weeks and rising.slope == pytest.approx(0.2)
    mondays = [date(2026, 11, 2) + timedelta(weeks=k) for k in range(4)]
    falling_weeks = [cost.Week("all", m, 1, v, v) for m, v in zip(mondays, [2.0, 1.5, 1.4, 1.0], strict=True)]
    falling = cost.trend(falling_weeks, "all")
    assert falling.direction == "down" and not falling.rising_two_weeks
    assert cost.trend([], "all").direction == "unknown"
