"""`lakeops sla list`: each contract, the state of each of its windows, lateness p50/p95, the watcher."""

from datetime import datetime

from lakeops.datasets.windows import Window
from lakeops.readiness import sla
from lakeops.readiness.contracts import ReadinessContract


def render(contracts: list[ReadinessContract], facts: list[sla.SlaFact], now: datetime) -> str:
    out = []
    for contract in contracts:
        out.append(
            f"{contract.dataset}  producer {contract.producer} -> consumer {contract.consumer}; owner "
            f"{contract.owner}; due {contract.expected_at:%H:%M} UTC the day after, buffer "
            f"{contract.buffer.total_seconds():.0f} s, fallback up to {contract.max_fallback_age.days} days old, "
            f"alerts via {contract.alert_block}"
        )
        windows = sla.states(contract, facts, now)
        out.append(f"  {'window':<10} {'state':<20} {'expected':<20} {'signal':<20} {'late s':>8}  alerts  fallback")
        for w in windows:
            out.append(
                f"  {w.window:<10} {w.state.value:<20} {_t(w.expected_at):<20} {_t(w.signal_at):<20} "
                f"{_n(w.lateness_s):>8}  {w.alerts:>6}  {w.fallback_snapshot or '-'}"
            )
        if not windows:
            out.append("  (no window opened or signalled yet)")
        stats = sla.lateness(facts, contract, now)
        if stats:
            out.append(f"  lateness over {stats[0]} watched windows: p50 {stats[1]:.1f} s, p95 {stats[2]:.1f} s")
        out.append("  " + watcher(contract, facts, now))
    return "\n".join(out)


def watcher(contract: ReadinessContract, facts: list[sla.SlaFact], now: datetime) -> str:
    """Whether the scheduled window-opening run keeps up: the newest window it opened on schedule."""
    scheduled = [
        f.window
        for f in facts
        if f.dataset == contract.dataset
        and f.kind == sla.Fact.OPENED
        and f.expected_at == contract.expected_time(Window.parse(f.window))
    ]
    due = contract.last_due(now)
    newest = max(scheduled, default=None)
    if newest is None:
        return f"watcher: no window was ever opened on schedule (last due: {due}); is sla-open-window scheduled?"
    if newest < due.key:
        return f"watcher: OVERDUE: the newest window opened on schedule is {newest} but {due} was due"
    return f"watcher: ok, the newest window opened on schedule is {newest}"


def _t(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


def _n(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"
