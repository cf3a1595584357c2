"""Concurrent writers of one table, on a SQLite catalog and on PostgreSQL side by side.

(a) 4 writer processes x 25 commits, each into its own window of bronze.flights (replace by source file);
(b) 2 writer processes x 25 commits, all into the same window.
For each: commits landed, commits lost (raised out of the commit), lost compare-and-swaps retried,
seconds from the writers' release to the last commit, and the snapshots the commits left on main.
lakeops' `replace_rows` is measured against the baseline of the same run: pyiceberg's own
`Table.overwrite` (what replace_rows was; its internal retries are not counted). Target: 0 lost,
one snapshot per commit, and in (b) the window holding the last committed batch whole.
The scenarios are those of tests/unit/test_contention.py.

    .venv/bin/python benchmarks/contention.py [--commits 25]
"""

import argparse
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import pytest
from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table

from admin.stack import PROJECT_DIR
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance

sys.path.insert(0, str(PROJECT_DIR / "tests"))  # the scenarios are the unit test's, at a larger size
from unit import test_contention as scenario  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
WIDTH = 48


def stock_overwrite(table: Table, batch: scenario.Batch) -> int:
    """The baseline: pyiceberg's Table.overwrite, a DELETE then an APPEND snapshot, its own retries only."""
    made = Provenance("bench", "writer", batch.source.removesuffix(".csv"), batch.batch_id)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        table.overwrite(batch.rows, EqualTo("_source", batch.source), snapshot_properties=made.to_properties())
    return table.current_snapshot().snapshot_id


def measure(backend: str, root: Path, plan: list[list[scenario.Batch]], commit: scenario.Commit) -> str:
    """One scenario on a fresh lake: its figures, one column of the table."""
    try:
        with scenario.fresh_lake(backend, root) as properties:
            done = scenario.run(properties, plan, commit)
            table = scenario.bronze(properties)
            snapshots, state = len(scenario.history(table)), window_state(table, done)
    except pytest.skip.Exception as skipped:
        return f"skipped: {skipped}"[: WIDTH - 2]
    landed = sum(len(report.landed) for report in done.reports)
    retries = done.retries if commit is scenario.replace_source else "-"
    return f"{landed:4} {len(done.lost):4} {retries:>7} {done.seconds:6.1f} {snapshots:5} {state}"


def window_state(table: Table, done: scenario.Run) -> str:
    """'whole' when every landed batch is held whole, once, and a shared window holds only the last one."""
    head = lake.provenance_of(table.current_snapshot())
    landed = {batch for report in done.reports for batch in report.landed}
    if {b.source for b in done.batches} == {scenario.SAME_SOURCE}:
        expected = {scenario.SAME_SOURCE: Counter({head.batch_id: done.size(head.batch_id)})} if head else {}
    else:
        expected = {b.source: Counter({b.batch_id: len(b.rows)}) for b in done.batches if b.batch_id in landed}
    return "whole" if scenario.contents(table) == expected else "MIXED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=25)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lakeops-bench-"))
    cases = [
        (f"(a) 4 writers x {args.commits}, distinct windows", scenario.distinct_windows(4, args.commits)),
        (f"(b) 2 writers x {args.commits}, the same window", scenario.same_window(2, args.commits)),
    ]
    print(f"{'':<52}" + "".join(f"{backend:<{WIDTH}}" for backend in BACKENDS))
    print(f"{'':<52}" + f"{'land lost retries   secs snaps window':<{WIDTH}}" * len(BACKENDS))
    for case, (label, plan) in enumerate(cases):
        for name, commit in (("replace_rows", scenario.replace_source), ("baseline", stock_overwrite)):
            row = [measure(b, root / f"{b}-{case}-{name}", plan, commit) for b in BACKENDS]
            print(f"{label if name == 'replace_rows' else '':<38}{name:<14}" + "".join(f"{c:<{WIDTH}}" for c in row))


if __name__ == "__main__":
    main()
