"""ops.run_facts and ops.metrics_daily on a real SQLite catalog: whole days replaced, history kept past retention."""

from datetime import timedelta

import pytest

from lakeops.datasets.names import METRICS_DAILY, RUN_FACTS
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance
from lakeops.metrics import history
from lakeops.metrics.cost import Prices
from lakeops.metrics.facts import Outcome

from .test_metrics import DAY, NOW, run

PRICES = {"process": Prices(cpu_hour=0.1, gb_hour=0.0)}
MADE_BY = Provenance("git:test", "metrics-run", "", "", operation="metrics")
COMMITTED = NOW - 3 * DAY - timedelta(minutes=30)


def facts_of_two_days():  # noqa: ANN201
    first, second = NOW - 2 * DAY, NOW - DAY
    return [
        run(
            "d1",
            Outcome.COMPLETED,
            first,
            seconds=1800,
            requested_cpu=1,
            code_version="v1",
            code_committed_at=COMMITTED,
        ),
        run("d1b", Outcome.FAILED, first + timedelta(hours=1), seconds=600, requested_cpu=1),
        run("d2", Outcome.COMPLETED, second, seconds=3600, requested_cpu=2, cpu_seconds=1800, peak_memory_mb=512),
    ]


def record(catalog, fresh, merged=None):  # noqa: ANN001, ANN201
    merged = history.merge(history.read_facts(catalog), fresh) if merged is None else merged
    return history.record(catalog, fresh, merged, [], PRICES, {}, NOW, MADE_BY)


def rows(catalog, ref, drop=("recorded_at", "computed_at")):  # noqa: ANN001, ANN201
    table = lake.load(catalog, ref).scan().to_arrow().to_pylist()
    kept = [{k: v for k, v in r.items() if k not in drop} for r in table]
    return sorted(kept, key=lambda r: (r["day"], r.get("scope", ""), r.get("flow_run_id", "")))


def test_facts_come_back_exactly_as_recorded_and_priced(catalog):
    facts = facts_of_two_days()
    recorded = record(catalog, facts)
    assert recorded.fact_days == ("2026-11-28", "2026-11-29")
    assert recorded.daily_days == ("2026-11-28", "2026-11-29", "2026-11-30")
    assert sorted(history.read_facts(catalog), key=lambda f: f.flow_run_id) == sorted(
        facts, key=lambda f: f.flow_run_id
    )
    priced = {r["unit"]: (r["day"], r["cost_requested"], r["cost_used"]) for r in rows(catalog, RUN_FACTS)}
    assert priced["d2"] == ("2026-11-29", pytest.approx(0.2), pytest.approx(0.05))
    assert priced["d1"] == ("2026-11-28", pytest.approx(0.05), None)  # no usage recorded


def test_each_days_figures_per_scope(catalog):
    record(catalog, facts_of_two_days())
    daily = {(r["day"], r["scope"]): r for r in history.read_daily(catalog)}
    first = daily[("2026-11-28", "all")]
    assert (first["units"], first["succeeded"], first["failed"], first["success_rate"]) == (2, 1, 1, 0.5)
    assert first["burn_rate"] == pytest.approx(100.0)
    assert (first["run_hours"], first["cost_requested"]) == (pytest.approx(2 / 3), pytest.approx(0.05 + 0.1 / 6))
    assert (first["changes"], first["changes_in_production"], first["change_failures"]) == (0, 0, 0)
    committed_day = daily[("2026-11-27", "all")] if ("2026-11-27", "all") in daily else None
    assert committed_day is None  # the history starts at the first run's day
    today = daily[("2026-11-30", "all")]
    assert (today["units"], today["success_rate"], today["run_hours"]) == (0, None, 0.0)
    assert daily[("2026-11-29", "dataset:flights")]["cost_per_pipeline_hour"] == pytest.approx(0.2)
    assert ("2026-11-29", "deployment:build-layer/silver.flights") in daily


def test_recording_the_same_runs_again_leaves_the_same_rows_in_one_commit_per_table(catalog):
    record(catalog, facts_of_two_days())
    facts_before, daily_before = rows(catalog, RUN_FACTS), rows(catalog, METRICS_DAILY)
    snapshots = {ref: len(lake.load(catalog, ref).snapshots()) for ref in (RUN_FACTS, METRICS_DAILY)}
    record(catalog, facts_of_two_days())
    assert rows(catalog, RUN_FACTS) == facts_before and rows(catalog, METRICS_DAILY) == daily_before
    assert {ref: len(lake.load(catalog, ref).snapshots()) for ref in snapshots} == {
        ref: n + 1 for ref, n in snapshots.items()
    }
    made = lake.provenance_of(lake.load(catalog, RUN_FACTS).current_snapshot())  # type: ignore[arg-type]
    assert made is not None and (made.operation, made.window) == ("metrics", "2026-11-28..2026-11-29")


def test_a_run_the_server_forgot_stays_in_the_history(catalog):
    record(catalog, facts_of_two_days())
    later = [run("d3", Outcome.COMPLETED, NOW - timedelta(hours=2), seconds=60)]  # the server kept only today
    recorded = record(catalog, later)
    assert recorded.fact_days == ("2026-11-30",)
    assert len(history.read_facts(catalog)) == 4 and len(recorded.facts) == 4
    daily = {(r["day"], r["scope"]): r["units"] for r in history.read_daily(catalog)}
    assert (daily[("2026-11-28", "all")], daily[("2026-11-29", "all")], daily[("2026-11-30", "all")]) == (2, 1, 1)


def test_a_later_re_run_of_a_window_recovers_the_day_it_was_due(catalog):
    failed = run("w", Outcome.FAILED, NOW - 2 * DAY, seconds=60)
    record(catalog, [failed])
    assert {(r["day"], r["scope"]): r["failed"] for r in history.read_daily(catalog)}[("2026-11-28", "all")] == 1
    re_run = run("w", Outcome.COMPLETED, NOW - DAY, seconds=60)  # the healer, a day later: same unit
    record(catalog, [re_run])
    day = {(r["day"], r["scope"]): r for r in history.read_daily(catalog)}[("2026-11-28", "all")]
    assert (day["units"], day["succeeded"], day["recovered"], day["failed"]) == (1, 1, 1, 0)
