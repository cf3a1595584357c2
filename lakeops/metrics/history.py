"""History beyond the orchestrator's retention: `ops.run_facts` (one row per run) and `ops.metrics_daily`.

Both tables are partitioned by day (the UTC day of a run's expected start) and written by replacing whole
days, so a second recording of the same runs leaves the same rows. A recording merges the runs the server
still holds with those the history kept (the server's copy wins, a run the server forgot stays), rewrites
the days the server returned, and recomputes every day's figures from the merged facts: a day's units can
change when a later run (a re-run) of them arrives.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog

from lakeops.datasets.filters import is_in
from lakeops.datasets.names import METRICS_DAILY, RUN_FACTS
from lakeops.iceberg import lake, schemas
from lakeops.iceberg.provenance import Provenance
from lakeops.metrics import cost, reliability, velocity
from lakeops.metrics.cost import Prices
from lakeops.metrics.facts import Outcome, RunFact
from lakeops.metrics.reliability import Reliability, Unit
from lakeops.metrics.velocity import Change, Promotion

_FACT_FIELDS = tuple(f.name for f in fields(RunFact))


def day_of(fact: RunFact) -> str:
    """The day a run belongs to: its expected start's, in UTC."""
    return fact.expected_start.date().isoformat()


def fact_rows(facts: Iterable[RunFact], prices: Mapping[str, Prices], recorded_at: datetime) -> pa.Table:
    """Run facts as rows of ops.run_facts, each priced by its work pool type's prices."""
    rows = []
    for fact in facts:
        priced = cost.run_cost(fact, prices.get(fact.work_pool_type, cost.FARGATE))
        priced_at = {"cost_requested": priced.requested, "cost_used": priced.used, "recorded_at": recorded_at}
        rows.append({**asdict(fact), "outcome": fact.outcome.value, "day": day_of(fact), **priced_at})
    return pa.Table.from_pylist(rows, schema=schemas.RUN_FACTS)


def facts_of(rows: pa.Table) -> list[RunFact]:
    """The run facts a table of ops.run_facts rows holds."""
    found = []
    for row in rows.to_pylist():
        values = {name: row[name] for name in _FACT_FIELDS}
        found.append(RunFact(**{**values, "outcome": Outcome(row["outcome"])}))
    return found


def read_facts(catalog: Catalog) -> list[RunFact]:
    """Every run the history kept."""
    table = lake.load(catalog, RUN_FACTS)
    return facts_of(table.scan().to_arrow()) if table.current_snapshot() is not None else []


def merge(kept: Iterable[RunFact], fresh: Iterable[RunFact]) -> list[RunFact]:
    """The history's runs with the server's over them (by flow run id), in order of expected start."""
    merged = {f.flow_run_id: f for f in kept} | {f.flow_run_id: f for f in fresh}
    return sorted(merged.values(), key=lambda f: (f.expected_start, f.flow_run_id))


@dataclass(frozen=True)
class Recorded:
    facts: tuple[RunFact, ...]  # the merged history
    fact_days: tuple[str, ...]  # the days of ops.run_facts rewritten
    daily_days: tuple[str, ...]  # the days of ops.metrics_daily rewritten


def record(
    catalog: Catalog,
    fresh: list[RunFact],
    merged: list[RunFact],
    promotions: Iterable[Promotion],
    prices: Mapping[str, Prices],
    committed: Mapping[str, datetime],
    now: datetime,
    made_by: Provenance,
) -> Recorded:
    """Rewrite the days of the server's runs (`fresh`) with the `merged` history, then every day's figures."""
    fact_days = sorted({day_of(f) for f in fresh})
    if fact_days:
        rows = fact_rows([f for f in merged if day_of(f) in set(fact_days)], prices, now)
        lake.replace_rows(lake.load(catalog, RUN_FACTS), rows, is_in("day", fact_days), _made(made_by, fact_days))
    days = _days(merged, now)
    if days:
        known = velocity.committed_times(merged, committed)
        changes = velocity.code_changes(merged, known) + velocity.transform_changes(promotions, known)
        daily = daily_rows(merged, changes, prices, days, now)
        lake.replace_rows(lake.load(catalog, METRICS_DAILY), daily, is_in("day", days), _made(made_by, days))
    return Recorded(tuple(merged), tuple(fact_days), tuple(days))


def _made(made_by: Provenance, days: list[str]) -> Provenance:
    return Provenance(made_by.code_version, made_by.flow_run_id, f"{days[0]}..{days[-1]}", "", operation="metrics")


def _days(facts: list[RunFact], now: datetime) -> list[str]:
    """Every day from the first run's to `now`'s."""
    if not facts:
        return []
    first, last = facts[0].expected_start.date(), max(now.date(), facts[-1].expected_start.date())
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def read_daily(catalog: Catalog) -> list[dict[str, Any]]:
    """Every day's figures, per day then scope."""
    table = lake.load(catalog, METRICS_DAILY)
    rows = table.scan().to_arrow().to_pylist() if table.current_snapshot() is not None else []
    return sorted(rows, key=lambda r: (r["day"], r["scope"]))


def daily_rows(
    facts: list[RunFact], changes: list[Change], prices: Mapping[str, Prices], days: list[str], computed_at: datetime
) -> pa.Table:
    """Each day's figures per scope: the units due that day, the cost of its runs, the changes committed."""
    units: dict[tuple[str, str], list[Unit]] = defaultdict(list)
    for unit in reliability.units_of(facts):
        for scope in _scopes(unit.dataset, unit.deployment):
            units[(unit.due.date().isoformat(), scope)].append(unit)
    spent: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for fact in facts:
        priced = cost.run_cost(fact, prices.get(fact.work_pool_type, cost.FARGATE))
        for scope in _scopes(fact.dataset, fact.deployment):
            acc = spent[(day_of(fact), scope)]
            acc[0] += priced.hours
            acc[1] += priced.requested
            acc[2] += priced.used if priced.used is not None else priced.requested
    wanted = set(days)
    keys = sorted({k for k in (*units, *spent) if k[0] in wanted} | {(d, "all") for d in days})
    rows = [_daily(day, scope, units[(day, scope)], spent[(day, scope)], changes, computed_at) for day, scope in keys]
    return pa.Table.from_pylist(rows, schema=schemas.METRICS_DAILY)


def _scopes(dataset: str | None, deployment: str) -> list[str]:
    return ["all", *([f"dataset:{dataset}"] if dataset else []), f"deployment:{deployment}"]


def _daily(
    day: str, scope: str, units: list[Unit], spent: list[float], changes: list[Change], computed_at: datetime
) -> dict[str, Any]:
    figures = Reliability(
        scope,
        1,
        len(units),
        sum(u.succeeded for u in units),
        sum(u.first_attempt for u in units),
        sum(u.stale for u in units),
    )
    hours, requested, used = spent
    row = {
        "day": day,
        "scope": scope,
        **{k: getattr(figures, k) for k in ("units", "succeeded", "first_attempt", "recovered", "stale", "failed")},
        "success_rate": figures.success_rate,
        "first_attempt_rate": figures.first_attempt_rate,
        "burn_rate": figures.burn_rate,
        "run_hours": hours,
        "cost_requested": requested,
        "cost_used": used,
        "cost_per_pipeline_hour": requested / hours if hours else None,
        "computed_at": computed_at,
    }
    return row | (_velocity(day, changes) if scope == "all" else {})


def _velocity(day: str, changes: list[Change]) -> dict[str, Any]:
    that_day = [c for c in changes if c.committed_at is not None and c.committed_at.date() == date.fromisoformat(day)]
    live = [c for c in that_day if c.lead_time is not None]
    lead = velocity.quantile(sorted(c.lead_time for c in live if c.lead_time is not None), 0.5)
    return {
        "changes": len(that_day),
        "changes_in_production": len(live),
        "change_failures": sum(c.failed for c in live),
        "lead_p50_s": lead.total_seconds() if lead is not None else None,
    }
