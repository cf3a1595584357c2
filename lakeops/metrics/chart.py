"""The weekly chart: success rate against its objective, median lead time against one hour, cost per pipeline-hour.

Drawn with matplotlib's object API (no pyplot: no global figure, no GUI backend) as SVG, which the Prefect
UI's markdown renderer shows when given as a data: URI (`![...](data:image/svg+xml;base64,...)`).
"""

import base64
import io

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lakeops.metrics.report import Report


def svg(report: Report) -> bytes:
    """Three panels over the report's weeks; a week without data leaves a gap."""
    weeks = [w.start.isoformat() for w in report.weekly]
    success = [None if w.success_rate is None else w.success_rate * 100 for w in report.weekly]
    lead = [None if w.lead_p50 is None else w.lead_p50.total_seconds() / 60 for w in report.weekly]
    per_hour = [w.per_pipeline_hour for w in report.weekly]
    figure = Figure(figsize=(9, 7.5), layout="constrained")
    top, middle, bottom = figure.subplots(3, 1, sharex=True)
    _panel(top, weeks, success, "success rate (%)", report.objective * 100, f"objective {report.objective:.1%}")
    _panel(middle, weeks, lead, "lead time, median (min)", report.velocity.objective.total_seconds() / 60, "1 h")
    _panel(bottom, weeks, per_hour, "USD per pipeline-hour", None, "")
    bottom.set_xlabel("week (Monday, UTC)")
    scope = f" of {report.dataset}" if report.dataset else ""
    figure.suptitle(f"Platform metrics{scope}, weekly, as of {report.now:%Y-%m-%d %H:%M} UTC")
    out = io.BytesIO()
    # Text as text (small, searchable); a fixed salt and no date: the same report draws the same bytes.
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "lakeops"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def data_uri(image: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(image).decode("ascii")


def _panel(axes: Axes, weeks: list[str], values: list[float | None], label: str, line: float | None, name: str) -> None:
    positions = list(range(len(weeks)))
    axes.plot(positions, [float("nan") if v is None else v for v in values], marker="o", color="#1f618d")
    for x, value in zip(positions, values, strict=True):
        if value is not None:
            axes.annotate(f"{value:.4g}", (x, value), textcoords="offset points", xytext=(0, 6), ha="center")
    if line is not None:
        axes.axhline(line, label=name, color="#b03a2e", linestyle="--", linewidth=1)
        axes.legend(loc="best", fontsize="small")
    axes.set_xticks(positions, weeks)
    axes.set_xlim(-0.5, len(weeks) - 0.5)  # every week of the period, those without data too
    axes.margins(y=0.2)  # room for the labels above the points
    axes.set_ylabel(label)
    axes.grid(alpha=0.3)
