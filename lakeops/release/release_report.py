"""A release's comparison as rows for a table artifact and as a markdown summary."""

from typing import Any

from lakeops.release.blue_green import ReleasePlan
from lakeops.release.comparison import Comparison

SAMPLE_ROWS = 10


def table_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per table: verdict, counts, the worst column match rate."""
    rows = []
    for t in comparison.tables:
        d = t.diff
        worst = min(d.columns, key=lambda c: c.match_rate) if d and d.columns else None
        rows.append(
            {
                "table": t.table,
                "verdict": str(t.verdict),
                "rows blue": t.blue.rows,
                "rows green": t.green.rows,
                "only blue": d.only_blue if d else 0,
                "only green": d.only_green if d else 0,
                "changed": d.changed if d else 0,
                "lowest match rate": f"{worst.column} {worst.match_rate:.4f}" if worst else "1.0",
                "suite failures": len(t.suite.failures) if t.suite else 0,
            }
        )
    return rows


def markdown(release: ReleasePlan, comparison: Comparison) -> str:
    """The verdict, per-table counts, column match rates, breaches and a sample of mismatching rows."""
    shown = comparison.windows or release.windows
    caught_up = "" if shown == release.windows else ", caught up (main gained them while the release ran)"
    out = [
        f"## Release {release.release_id} of {release.dataset}: **{comparison.verdict}**",
        f"{release.green_version} (green) vs {release.blue_version} (blue), windows "
        f"{shown[0]}..{shown[-1]} ({len(shown)}){caught_up}, Bronze input pinned per window.",
        "",
        "| table | verdict | rows blue | rows green | only blue | only green | changed |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table_rows(comparison):
        out.append(
            f"| {row['table']} | {row['verdict']} | {row['rows blue']} | {row['rows green']} | "
            f"{row['only blue']} | {row['only green']} | {row['changed']} |"
        )
    for t in comparison.tables:
        if t.diff:
            rates = ", ".join(f"{c.column} {c.match_rate:.4f}" for c in t.diff.columns if c.match_rate < 1)
            out.append(f"\n**{t.table}** column match rates below 1: {rates or 'none'}")
        out += [f"- outside: {b}" for b in t.breaches]
    sample = comparison.sample()[:SAMPLE_ROWS]
    if sample:
        columns = list(dict.fromkeys(k for row in sample for k in row))
        out += ["", "Sample of mismatching rows:", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in sample]
    return "\n".join(out)
