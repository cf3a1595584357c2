"""Reliability: success rate per deployment, dataset and overall against the objective, its error budget and burn.

What counts (the README says the same):

- The unit is a piece of work, not a run: a deployment's window (or a run of a deployment without
  windows). Its attempts are every run for it: Prefect's retries inside a run, the healer's re-run
  after a crash, a person's re-run.
- A unit succeeded when any attempt completed (eventual success); it succeeded on the first attempt
  when its first run completed without a retry. A unit that succeeded only later is recovered: it
  counts once, as a success, and is shown beside the first-attempt figure.
- A unit failed when it has finished attempts and none completed (Failed, TimedOut, Crashed).
- Cancelled runs count neither way (a person or an automation stopped them); a unit with only
  cancelled runs is not counted. Unfinished runs (scheduled, running, a release paused for a
  decision) are not facts yet.
- A stale run (built on the last good data when the real input was late) completed: it is a success,
  counted as stale beside it.
- A unit belongs to the period of its first run's expected start, so a run that crosses a period's
  end counts in the period it was due in.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lakeops.metrics.facts import Outcome, RunFact

OBJECTIVE = 0.995


@dataclass(frozen=True, slots=True)
class Unit:
    """The attempts at one piece of work, and what they came to."""

    deployment: str
    dataset: str | None
    unit: str
    due: datetime  # the first attempt's expected start
    succeeded: bool
    first_attempt: bool
    stale: bool

    @property
    def recovered(self) -> bool:
        return self.succeeded and not self.first_attempt


def units_of(facts: Iterable[RunFact]) -> list[Unit]:
    """Group runs into units (deployment, unit), cancelled runs left out, in order of their due time."""
    firsts: dict[tuple[str, str], RunFact] = {}
    more: dict[tuple[str, str], list[RunFact]] = {}  # most units have one run: no list for those
    for fact in facts:
        if fact.outcome is not Outcome.CANCELLED:
            key = (fact.deployment, fact.unit)
            if key not in firsts:
                firsts[key] = fact
            elif key in more:
                more[key].append(fact)
            else:
                more[key] = [firsts[key], fact]
    result = [_unit(key[0], key[1], first, more.get(key)) for key, first in firsts.items()]
    result.sort(key=lambda u: (u.due, u.deployment, u.unit))
    return result


def _unit(deployment: str, unit: str, only: RunFact, runs: list[RunFact] | None) -> Unit:
    """A unit of one run (`only`), or of several (`runs`)."""
    if runs is None:
        completed = only.outcome is Outcome.COMPLETED
        first_attempt = completed and only.attempts <= 1
        return Unit(
            deployment, only.dataset, unit, only.expected_start, completed, first_attempt, completed and only.stale
        )
    runs.sort(key=lambda r: (r.expected_start, r.flow_run_id))
    first = runs[0]
    done = [r for r in runs if r.outcome is Outcome.COMPLETED]
    return Unit(
        deployment,
        first.dataset,
        unit,
        first.expected_start,
        succeeded=bool(done),
        first_attempt=first.outcome is Outcome.COMPLETED and first.attempts <= 1,
        stale=bool(done) and all(r.stale for r in done),
    )


@dataclass(frozen=True)
class Reliability:
    """One scope's figures over one period."""

    scope: str  # "all", "dataset:<name>" or "deployment:<flow/name>"
    days: float
    units: int
    succeeded: int
    first_attempt: int
    stale: int
    objective: float = OBJECTIVE

    @property
    def failed(self) -> int:
        return self.units - self.succeeded

    @property
    def recovered(self) -> int:
        return self.succeeded - self.first_attempt

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.units if self.units else None

    @property
    def first_attempt_rate(self) -> float | None:
        return self.first_attempt / self.units if self.units else None

    @property
    def burn_rate(self) -> float:
        """How fast the budget burns: the failure rate over the rate the objective allows (1.0: exactly on it)."""
        return (self.failed / self.units) / (1 - self.objective) if self.units else 0.0

    @property
    def budget_left(self) -> float:
        """The share of the period's error budget not yet spent (1.0: none spent; below 0: overspent)."""
        return 1 - self.burn_rate

    @property
    def meets_objective(self) -> bool | None:
        return None if self.success_rate is None else self.success_rate >= self.objective


def reliability(
    units: Iterable[Unit], now: datetime, period: timedelta, scope: str = "all", objective: float = OBJECTIVE
) -> Reliability:
    """The figures of the units due in (now - period, now] that match `scope`."""
    chosen = [u for u in units if now - period < u.due <= now and _in_scope(u, scope)]
    return Reliability(
        scope,
        period / timedelta(days=1),
        len(chosen),
        sum(u.succeeded for u in chosen),
        sum(u.first_attempt for u in chosen),
        sum(u.stale for u in chosen),
        objective,
    )


def scopes(units: Iterable[Unit]) -> list[str]:
    """Every scope the units have: overall, each dataset, each deployment."""
    listed = list(units)
    datasets = sorted({u.dataset for u in listed if u.dataset})
    deployments = sorted({u.deployment for u in listed})
    return ["all", *(f"dataset:{d}" for d in datasets), *(f"deployment:{d}" for d in deployments)]


def _in_scope(unit: Unit, scope: str) -> bool:
    kind, _, name = scope.partition(":")
    if kind == "all":
        return True
    return (unit.dataset if kind == "dataset" else unit.deployment) == name


@dataclass(frozen=True)
class BurnRule:
    """Alert when the budget burns at least `threshold` times too fast over both windows (SRE workbook, ch. 5)."""

    name: str
    long: timedelta
    short: timedelta
    threshold: float


# For a 28-day budget: 2% of it gone in an hour pages fast; 5% in six hours pages slow.
FAST = BurnRule("fast", timedelta(hours=1), timedelta(minutes=5), 14.4)
SLOW = BurnRule("slow", timedelta(hours=6), timedelta(minutes=30), 6.0)


@dataclass(frozen=True)
class BurnAlert:
    rule: BurnRule
    scope: str
    long_burn: float
    short_burn: float

    def describe(self) -> str:
        return (
            f"{self.scope}: error budget burning {self.long_burn:.1f}x over {_span(self.rule.long)} and "
            f"{self.short_burn:.1f}x over {_span(self.rule.short)} (alert at {self.rule.threshold}x, "
            f"{self.rule.name} burn)"
        )


def _span(window: timedelta) -> str:
    minutes = window / timedelta(minutes=1)
    return f"{minutes / 60:g} h" if minutes % 60 == 0 else f"{minutes:g} min"


def burn_alerts(
    units: Iterable[Unit], now: datetime, rules: tuple[BurnRule, ...] = (FAST, SLOW), objective: float = OBJECTIVE
) -> list[BurnAlert]:
    """The rules that fire for each scope: both windows burning at or over the rule's threshold."""
    widest = max((max(rule.long, rule.short) for rule in rules), default=timedelta(0))
    recent = [u for u in units if now - widest < u.due <= now]  # no rule looks further back
    fired = []
    for scope in scopes(recent):
        for rule in rules:
            long = reliability(recent, now, rule.long, scope, objective)
            short = reliability(recent, now, rule.short, scope, objective)
            if long.units and short.units and min(long.burn_rate, short.burn_rate) >= rule.threshold:
                fired.append(BurnAlert(rule, scope, long.burn_rate, short.burn_rate))
    return fired
