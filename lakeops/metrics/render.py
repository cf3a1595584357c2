"""How a Report reads: markdown for the Prefect UI, one row per figure for a table, a dict for JSON."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lakeops.metrics.cost import Trend, Week
from lakeops.metrics.reliability import Reliability
from lakeops.metrics.velocity import Change

if TYPE_CHECKING:
    from lakeops.metrics.report import Report

RELIABILITY_HEADER = [
    "scope",
    "units (28 d)",
    "success 1 d",
    "7 d",
    "28 d",
    "first attempt (28 d)",
    "recovered",
    "stale",
    "failed",
    "budget left (28 d)",
    "burn rate 1 d / 7 d / 28 d",
]
CHANGES_HEADER = ["change", "kind", "committed", "in production", "lead time", "failed"]
COST_HEADER = ["scope", "week", "run hours", "requested", "used", "per pipeline-hour"]
TREND_HEADER = ["scope", "weeks", "slope a week", "trend", "alert"]


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def duration(value: timedelta | None) -> str:
    """45 s, 12 min, 1 h 05 min, 2 d 3 h."""
    if value is None:
        return "-"
    seconds = value.total_seconds()
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.0f} s"
    if seconds < 3600:
        return f"{sign}{seconds / 60:.0f} min"
    if seconds < 86400:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{sign}{hours} h {minutes:02d} min"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{sign}{days} d {hours} h"


def when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [" | ".join(header), " | ".join("---" for _ in header), *(" | ".join(row) for row in rows)]
    return "\n".join(f"| {line} |" for line in lines)


def status(met: bool | None) -> str:
    return "no data" if met is None else ("met" if met else "MISSED")


def markdown(report: "Report", chart: str | None = None) -> str:
    title = f"# Platform metrics{f' of {report.dataset}' if report.dataset else ''}"
    intro = (
        f"As of {when(report.now)}. Reliability over rolling 1, 7 and 28 days; velocity and cost over the last "
        f"{report.days} days."
    )
    parts = [title, intro]
    if chart:
        parts.append(f"![Weekly success rate, lead time and cost per pipeline-hour]({chart})")
    parts += [*_reliability(report), *_velocity(report), *_cost(report)]
    return "\n\n".join(parts) + "\n"


def _periods(report: "Report", scope: str) -> tuple[Reliability, Reliability, Reliability]:
    day, week, month = (report.of(scope, d) for d in (1, 7, 28))
    assert day is not None and week is not None and month is not None, "every scope has every period"
    return day, week, month


def _reliability_row(day: Reliability, week: Reliability, month: Reliability) -> list[str]:
    return [
        month.scope,
        str(month.units),
        pct(day.success_rate),
        pct(week.success_rate),
        pct(month.success_rate),
        pct(month.first_attempt_rate),
        str(month.recovered),
        str(month.stale),
        str(month.failed),
        pct(month.budget_left) if month.units else "-",
        " / ".join(f"{r.burn_rate:.1f}" for r in (day, week, month)),
    ]


def _scopes(report: "Report") -> list[str]:
    return list(dict.fromkeys(r.scope for r in report.reliability))


def _reliability(report: "Report") -> list[str]:
    rows = [_reliability_row(*_periods(report, scope)) for scope in _scopes(report)]
    alerts = "\n".join(f"- **{a.rule.name} burn** {a.describe()}" for a in report.burn_alerts)
    return [
        f"## Reliability (objective {pct(report.objective)})",
        table(RELIABILITY_HEADER, rows),
        f"**Burn-rate alerts:**\n\n{alerts}" if alerts else "**Burn-rate alerts:** none.",
    ]


def _change_row(change: Change) -> list[str]:
    production = when(change.production_at) if change.production_at else "never"
    failed = "yes" if change.failed else "no"
    return [change.name, change.kind, when(change.committed_at), production, duration(change.lead_time), failed]


def _velocity(report: "Report") -> list[str]:
    v = report.velocity
    figures = [
        ["lead time, median", duration(v.lead_p50), f"<= {duration(v.objective)}: {status(v.meets_objective)}"],
        ["lead time, p90", duration(v.lead_p90), ""],
        ["changes in production", f"{v.in_production} of {v.changes} ({v.per_week:.1f} a week)", ""],
        ["change failure rate", pct(v.change_failure_rate), ""],
        ["time to restore, median", duration(v.restore_p50), ""],
    ]
    changes = [_change_row(c) for c in report.changes]
    return [
        f"## Velocity (changes committed in the last {report.days} days)",
        table(["figure", "value", "objective"], figures),
        table(CHANGES_HEADER, changes) if changes else "No change was committed in the period.",
    ]


def _week_row(week: Week) -> list[str]:
    hours = f"{week.hours:.2f}"
    return [week.scope, f"{week.start}", hours, usd(week.requested), usd(week.used), usd(week.per_pipeline_hour)]


def _trend_row(trend: Trend) -> list[str]:
    slope = usd(trend.slope) if trend.slope is not None else "-"
    alert = "RISING two weeks running" if trend.rising_two_weeks else ""
    return [trend.scope, str(trend.weeks), slope, trend.direction, alert]


def _cost(report: "Report") -> list[str]:
    if not report.weeks:
        return ["## Cost per pipeline-hour", "No run in the period."]
    return [
        "## Cost per pipeline-hour (USD: a week's requested cost over its hours of flow-run wall time)",
        table(COST_HEADER, [_week_row(w) for w in report.weeks]),
        table(TREND_HEADER, [_trend_row(t) for t in report.trends]),
    ]


def rows(report: "Report") -> list[dict[str, str]]:
    """One row per figure: dimension, scope, period, figure, value, objective, status."""
    out = []
    for scope in _scopes(report):
        for r in _periods(report, scope):
            period = f"{r.days:g} d"
            met = status(r.meets_objective)
            out.append(_row("reliability", scope, period, "success rate", pct(r.success_rate), pct(r.objective), met))
            out.append(_row("reliability", scope, period, "first-attempt success", pct(r.first_attempt_rate)))
            out.append(_row("reliability", scope, period, "units (succeeded/all)", f"{r.succeeded}/{r.units}"))
            out.append(_row("reliability", scope, period, "budget left", pct(r.budget_left) if r.units else "-"))
            out.append(_row("reliability", scope, period, "burn rate", f"{r.burn_rate:.2f}"))
    v, period = report.velocity, f"{report.days} d"
    lead = status(v.meets_objective)
    out.append(_row("velocity", "all", period, "lead time, median", duration(v.lead_p50), duration(v.objective), lead))
    out.append(_row("velocity", "all", period, "lead time, p90", duration(v.lead_p90)))
    out.append(_row("velocity", "all", period, "changes a week", f"{v.per_week:.2f}"))
    out.append(_row("velocity", "all", period, "change failure rate", pct(v.change_failure_rate)))
    out.append(_row("velocity", "all", period, "time to restore, median", duration(v.restore_p50)))
    for week in report.weeks:
        out.append(_row("cost", week.scope, f"week of {week.start}", "per pipeline-hour", usd(week.per_pipeline_hour)))
    for trend in report.trends:
        alert = "RISING two weeks running" if trend.rising_two_weeks else ""
        out.append(_row("cost", trend.scope, period, "trend", trend.direction, "down or flat", alert))
    return out


def _row(
    dimension: str, scope: str, period: str, figure: str, value: str, objective: str = "", met: str = ""
) -> dict[str, str]:
    keys = ("dimension", "scope", "period", "figure", "value", "objective", "status")
    return dict(zip(keys, (dimension, scope, period, figure, value, objective, met), strict=True))


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def as_dict(report: "Report") -> dict[str, Any]:
    v = report.velocity
    return {
        "now": report.now.isoformat(),
        "days": report.days,
        "dataset": report.dataset,
        "reliability": {
            "objective": report.objective,
            "scopes": [_reliability_dict(r) for r in report.reliability],
            "burn_alerts": [
                {"rule": a.rule.name, "scope": a.scope, "long_burn": a.long_burn, "short_burn": a.short_burn}
                for a in report.burn_alerts
            ],
        },
        "velocity": {
            "objective_s": v.objective.total_seconds(),
            "changes": v.changes,
            "in_production": v.in_production,
            "lead_p50_s": _seconds(v.lead_p50),
            "lead_p90_s": _seconds(v.lead_p90),
            "per_week": v.per_week,
            "change_failure_rate": v.change_failure_rate,
            "restore_p50_s": _seconds(v.restore_p50),
            "list": [_change_dict(c) for c in report.changes],
        },
        "cost": {
            "weeks": [
                {
                    "scope": w.scope,
                    "week": w.start.isoformat(),
                    "hours": w.hours,
                    "requested": w.requested,
                    "used": w.used,
                    "per_pipeline_hour": w.per_pipeline_hour,
                }
                for w in report.weeks
            ],
            "trends": [
                {
                    "scope": t.scope,
                    "weeks": t.weeks,
                    "slope": t.slope,
                    "direction": t.direction,
                    "rising_two_weeks": t.rising_two_weeks,
                }
                for t in report.trends
            ],
        },
        "weekly": [
            {
                "week": w.start.isoformat(),
                "success_rate": w.success_rate,
                "lead_p50_s": _seconds(w.lead_p50),
                "per_pipeline_hour": w.per_pipeline_hour,
            }
            for w in report.weekly
        ],
    }


def _reliability_dict(r: Reliability) -> dict[str, Any]:
    counts = {k: getattr(r, k) for k in ("scope", "days", "units", "succeeded", "first_attempt", "stale")}
    figures = ("failed", "recovered", "success_rate", "first_attempt_rate", "burn_rate", "budget_left")
    return {**counts, **{k: getattr(r, k) for k in figures}, "meets_objective": r.meets_objective}


def _change_dict(c: Change) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "name": c.name,
        "committed_at": _iso(c.committed_at),
        "production_at": _iso(c.production_at),
        "lead_time_s": _seconds(c.lead_time),
        "failed": c.failed,
    }
