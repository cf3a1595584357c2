"""The report from known facts: each dimension's figures exact, the period rules, rendering, alerts and the chart."""

import json
from datetime import date, timedelta

import pytest

from lakeops.metrics import chart, report
from lakeops.metrics.cost import Prices
from lakeops.metrics.facts import Outcome
from lakeops.metrics.velocity import Promotion

from .test_metrics import DAY, NOW, SILVER, run

WEATHER = "ingest/bronze.weather"
HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)
PRICES = {"process": Prices(cpu_hour=0.1, gb_hour=0.01), "ecs": Prices()}


def due(i: int):  # noqa: ANN201 - the i-th day back, at 14:00 (NOW is Monday 2026-11-30 12:00)
    return NOW - i * DAY + 2 * HOUR


V1_AT = due(14) - 10 * MINUTE
V2_AT = due(5) - 20 * MINUTE
COMMITTED = {"v0": NOW - 40 * DAY, "v1": V1_AT, "v2": V2_AT}


def silver(i: int, outcome: Outcome = Outcome.COMPLETED, later: timedelta = timedelta(0), **more):  # noqa: ANN003, ANN201
    version = "v2" if i <= 5 else "v1"
    return run(
        f"w{i}",
        outcome,
        due(i) + later,
        seconds=1800,
        code_version=version,
        requested_cpu=1,
        requested_memory_mb=2048,
        **more,
    )


def history():  # noqa: ANN201
    """Two weeks of silver.flights (one failed window, one recovered at v2's first run) and three weather windows."""
    facts = [silver(i) for i in range(1, 15) if i not in (2, 5)]
    facts += [silver(2, Outcome.FAILED), silver(5, Outcome.FAILED), silver(5, later=HOUR)]
    weather = dict(
        deployment=WEATHER,
        dataset="weather",
        work_pool_type="ecs",
        requested_cpu=0.5,
        requested_memory_mb=1024,
        seconds=600,
    )
    facts += [
        run("w1", Outcome.COMPLETED, due(1), stale=True, **weather),
        run("w2", Outcome.CANCELLED, due(2), **weather),
        run("w3", Outcome.CRASHED, due(3), **{**weather, "seconds": 300}),  # out of memory
        run("w3", Outcome.COMPLETED, due(3) + HOUR, **weather),  # the healer's re-run
        run("old", Outcome.FAILED, NOW - 40 * DAY, **weather),  # before every period
    ]
    return facts


PROMOTIONS = [Promotion("r1", "flights", "v2", "v2", NOW - 3 * DAY, rolled_back_at=NOW - 3 * DAY + 12 * MINUTE)]


@pytest.fixture
def computed() -> report.Report:
    return report.compute(history(), PROMOTIONS, COMMITTED, PRICES, NOW)


def test_reliability_per_scope_over_1_7_and_28_days(computed):
    figures = {(r.scope, r.days): (r.units, r.succeeded, r.first_attempt, r.stale) for r in computed.reliability}
    assert figures[("all", 1)] == (2, 2, 2, 1)  # silver w1, weather w1 (stale)
    assert figures[("all", 7)] == (9, 8, 6, 1)  # w2 failed; w5 and weather w3 recovered
    assert figures[("all", 28)] == (16, 15, 13, 1)  # the cancelled window counts neither way
    assert figures[("dataset:weather", 28)] == (2, 2, 1, 1)
    assert figures[(f"deployment:{SILVER}", 28)] == (14, 13, 12, 0)
    month = computed.of("all", 28)
    assert month is not None and month.success_rate == pytest.approx(15 / 16)
    assert month.burn_rate == pytest.approx((1 / 16) / 0.005) and month.budget_left == pytest.approx(1 - 12.5)
    assert [r.scope for r in computed.reliability[::3]] == [
        "all",
        "dataset:flights",
        "dataset:weather",
        f"deployment:{SILVER}",
        f"deployment:{WEATHER}",
    ]
    assert computed.burn_alerts == ()  # nothing failed in the last hours


def test_velocity_of_the_changes_committed_in_the_period(computed):
    changes = {c.name: c for c in computed.changes}
    assert set(changes) == {"v1", "v2", "flights@v2"}  # v0 was committed before the period
    assert changes["v1"].lead_time == 40 * MINUTE and not changes["v1"].failed
    assert changes["v2"].lead_time == HOUR + 50 * MINUTE and changes["v2"].failed  # its first run failed
    assert changes["flights@v2"].lead_time == NOW - 3 * DAY - V2_AT and changes["flights@v2"].failed  # rolled back
    v = computed.velocity
    assert (v.changes, v.in_production, v.per_week) == (3, 3, 0.75)
    assert v.lead_p50 == HOUR + 50 * MINUTE and v.meets_objective is False
    assert v.lead_p90 == 110 * MINUTE + 0.8 * (changes["flights@v2"].lead_time - 110 * MINUTE)
    assert v.change_failure_rate == pytest.approx(2 / 3)
    # Restored: silver w5 (failed run's end to the re-run's end), weather w3, the rollback; w2 never was.
    assert v.restore_p50 == HOUR  # the median of 1 h, 1 h 05 min (the crash's end to its re-run's) and 12 min


def test_cost_per_pipeline_hour_per_week_over_the_period(computed):
    weeks = {(w.scope, w.start): w for w in computed.weeks}
    assert sorted({w.start for w in computed.weeks}) == [date(2026, 11, 16), date(2026, 11, 23)]
    # Week of 11-23 (days 1..7 back): silver 8 runs of 30 min at 0.1 + 2 GB x 0.01 an hour; weather 3 runs.
    silver_week = 8 * 0.5 * 0.12
    fargate = 0.5 * 0.04048 + 1 * 0.004445
    weather_week = (600 + 600 + 300 + 600) / 3600 * fargate  # a cancelled run cost what it ran
    week = weeks[("all", date(2026, 11, 23))]
    assert week.hours == pytest.approx(4 + 2100 / 3600)
    assert week.requested == pytest.approx(silver_week + weather_week)
    assert weeks[("dataset:weather", date(2026, 11, 23))].per_pipeline_hour == pytest.approx(fargate)
    trend = computed.trend_of("dataset:flights")
    assert trend is not None and (trend.direction, trend.rising_two_weeks) == ("flat", False)
    assert [w.start for w in computed.weekly] == [date(2026, 11, 2) + k * timedelta(weeks=1) for k in range(5)]
    assert [w.success_rate for w in computed.weekly][2:] == [1.0, pytest.approx(8 / 9), None]


def test_one_dataset_only(computed):
    flights = report.compute(history(), PROMOTIONS, COMMITTED, PRICES, NOW, dataset="flights")
    assert flights.of("all", 28).units == 14  # type: ignore[union-attr]
    assert flights.of("dataset:weather", 28) is None
    assert {c.name for c in flights.changes} == {"v1", "v2", "flights@v2"}
    weather = report.compute(history(), PROMOTIONS, COMMITTED, PRICES, NOW, dataset="weather")
    assert weather.changes == ()  # its runs carried no version, and the release was flights'


def test_no_runs_at_all():
    empty = report.compute([], [], {}, PRICES, NOW)
    assert [(r.scope, r.days, r.units) for r in empty.reliability] == [("all", 1, 0), ("all", 7, 0), ("all", 28, 0)]
    assert (empty.velocity.changes, empty.velocity.lead_p50, empty.weeks) == (0, None, ())
    lines = report.summary_lines(empty)
    assert lines[0].startswith("reliability: - over 28 d (0 units; objective 99.50%: no data)")
    assert "No change was committed" in empty.to_markdown() and "No run in the period" in empty.to_markdown()
    assert json.loads(json.dumps(empty.to_dict()))["reliability"]["scopes"][2]["success_rate"] is None


def test_every_run_failed_burns_the_budget_and_pages():
    failing = [run(f"f{i}", Outcome.FAILED, NOW - i * MINUTE) for i in range(1, 4)]
    burning = report.compute(failing, [], {}, PRICES, NOW)
    assert burning.of("all", 1).success_rate == 0.0  # type: ignore[union-attr]
    assert {(a.scope, a.rule.name) for a in burning.burn_alerts} >= {("all", "fast"), ("all", "slow")}
    message = report.burn_message(burning.burn_alerts[0], burning)
    assert message.subject == "[lakeops] all: error budget burning 200x (fast)"
    assert "200.0x over 1 h and 200.0x over 5 min" in message.body and "lasts 3 h 22 min" in message.body
    assert report.burn_payload(burning.burn_alerts[0], burning)["short_window_s"] == 300
    assert "- **fast burn** all:" in burning.to_markdown()


def test_rendered_as_markdown_rows_json_and_a_chart(computed):
    text = computed.to_markdown("data:image/svg+xml;base64,AAAA")
    assert text.startswith("# Platform metrics\n")
    assert "![Weekly success rate, lead time and cost per pipeline-hour](data:image/svg+xml;base64,AAAA)" in text
    assert "| all | 16 | 100.00% | 88.89% | 93.75% | 81.25% | 2 | 1 | 1 | -1150.00% | 0.0 / 22.2 / 12.5 |" in text
    assert "| lead time, median | 1 h 50 min | <= 1 h 00 min: MISSED |" in text
    assert "| v2 | code | 2026-11-25 13:40 UTC | 2026-11-25 15:30 UTC | 1 h 50 min | yes |" in text
    rows = computed.rows()
    assert {
        "dimension": "reliability",
        "scope": "all",
        "period": "28 d",
        "figure": "success rate",
        "value": "93.75%",
        "objective": "99.50%",
        "status": "MISSED",
    } in rows
    assert json.loads(json.dumps(computed.to_dict()))["velocity"]["lead_p50_s"] == 6600
    lines = report.summary_lines(computed)
    assert lines[0].startswith("reliability: 93.75% over 28 d (16 units; objective 99.50%: MISSED)")
    assert lines[1].startswith("velocity: lead time median 1 h 50 min, p90 ")
    assert lines[2] == "cost: $0.1079 per pipeline-hour in the latest week, trend down"  # weather's is cheaper
    image = chart.svg(computed)
    assert image.startswith(b"<?xml") and b"success rate (%)" in image and image == chart.svg(computed)
    assert chart.data_uri(image).startswith("data:image/svg+xml;base64,PD94bWwg")


def test_the_chart_of_a_report_without_runs_draws_empty_weeks():
    image = chart.svg(report.compute([], [], {}, PRICES, NOW))
    assert image.startswith(b"<?xml") and b"2026-11-30" in image
