"""`lakeops ...`: one thin function per command, at the edge (it may import Prefect and admin/)."""

import argparse
import sys
import uuid
from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd
from pyiceberg.catalog import Catalog

from admin import lakehouse, metrics_cli, release_cli
from lakeops.build.pipeline import RunInfo
from lakeops.datasets import registry as registry_file
from lakeops.datasets.names import QUARANTINE, TableRef
from lakeops.datasets.registry import Registry
from lakeops.errors import LakeopsError
from lakeops.iceberg import lake, storage
from lakeops.iceberg.provenance import Provenance, code_version
from lakeops.readiness import contracts, sla, sla_report, status
from lakeops.settings import LakeSettings
from lakeops.versioning import history, maintenance, replay, rollback, timetravel


def _catalog() -> Catalog:
    return lakehouse.open_catalog(LakeSettings())


def _registry() -> Registry:
    return registry_file.load(LakeSettings().registry)


def _tables() -> tuple[TableRef, ...]:
    return tuple(lake.table_specs(_registry()))


def _table(name: str) -> TableRef:
    for ref in _tables():
        if ref.identifier == name:
            return ref
    raise argparse.ArgumentTypeError(f"unknown table {name!r}; known: {', '.join(r.identifier for r in _tables())}")


def _as_of(args: argparse.Namespace) -> timetravel.AsOf:
    if args.as_of:
        return timetravel.AsOf.parse_time(args.as_of)
    return timetravel.AsOf(snapshot_id=args.snapshot, ref=args.tag)


def _cli_run() -> RunInfo:
    return RunInfo(flow_run_id=f"cli-{uuid.uuid4()}", code_version=code_version())


def cmd_show(args: argparse.Namespace) -> int:
    """Print a table as of a snapshot, a time or a tag (current by default)."""
    table = lake.load(_catalog(), args.table)
    snapshot, rows = timetravel.read_as_of(table, _as_of(args))
    if args.window and len(rows):
        rows = rows[_window_keys(args.table, rows) == args.window]
    made = lake.provenance_of(snapshot)
    print(
        f"{args.table} snapshot {snapshot.snapshot_id} ({_as_of(args)}): {len(rows)} rows"
        + (f", window {made.window} by {made.flow_run_id}, code {made.code_version}" if made else "")
    )
    print(rows.head(args.limit).to_string(index=False) if len(rows) else "(no rows)")
    return 0


def _window_keys(ref: TableRef, rows: "pd.Series") -> "pd.Series":
    """Each row's window key: a quarantine row names it, a layer's row is placed by its window column."""
    if ref.namespace == QUARANTINE:
        return rows["window"]
    _, layer = _registry().by_table(ref)
    return pd.Series([w.key for w in layer.window.windows(rows)], index=rows.index)


def cmd_history(args: argparse.Namespace) -> int:
    """List a table's snapshots with their provenance, newest first."""
    print(history.render(history.history(lake.load(_catalog(), args.table), args.limit)))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Re-run a transform version over a window range into a branch, from recorded Bronze snapshots."""
    catalog = _catalog()
    registry = _registry()
    plan = replay.plan(catalog, registry, args.dataset, args.version, args.start, args.end, args.branch)
    print(f"replay {plan.version} into branch {plan.branch}: {len(plan.sources)} windows", flush=True)
    validate = None if args.no_validate else _gx_validate()
    result = replay.run(catalog, registry, plan, _cli_run(), validate, on_progress=lambda p: print(p, flush=True))
    heads = " ".join(f"{table}@{snapshot}" for table, snapshot in result.heads.items())
    print(f"done: {len(result.replayed)} replayed, {len(result.skipped)} already there; branch {result.branch} {heads}")
    return 0


def _gx_validate():  # noqa: ANN202 - the validator type lives with the lazily imported suites
    from lakeops.build.validation import validate

    return validate


def cmd_rollback(args: argparse.Namespace) -> int:
    """Point a table's main branch back at an earlier snapshot, in one commit."""
    result = rollback.rollback(_catalog(), _registry(), args.table, _as_of(args), force=args.force)
    if not result.check.safe:
        print(f"warning (forced): {result.check.warning()}", file=sys.stderr)
    print(f"{result.table}: main moved from snapshot {result.previous_snapshot_id} to {result.snapshot_id}")
    return 0


def cmd_sla_list(args: argparse.Namespace) -> int:
    """List readiness contracts and the state of each window: on time, late, stale, caught up, missed."""
    catalog = _catalog()
    lake.ensure_tables(catalog, _registry())
    print(sla_report.render(contracts.all_of(_registry()), sla.read(catalog), maintenance.utcnow()))
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    """Compact small files, expire old snapshots (tags and replay inputs kept), delete orphan files."""
    policy = maintenance.RetentionPolicy(
        keep_last=args.keep_last,
        max_age=timedelta(hours=args.max_age_hours),
        orphan_grace=timedelta(minutes=args.orphan_grace_minutes),
        compact_min_files=args.compact_min_files,
    )
    run = _cli_run()
    made_by = Provenance(run.code_version, run.flow_run_id, "", "", operation="maintenance")
    refs = tuple(args.table) if args.table else _tables()
    for report in maintenance.maintain(_catalog(), _registry(), refs, policy, made_by, maintenance.utcnow()):
        print(report)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """List the tables with their current snapshot, row count and last readiness signal."""
    settings = LakeSettings()
    catalog = lakehouse.open_catalog(settings)
    lines = status.status(catalog, _tables())
    if not lines:
        print(f"no lakeops tables in catalog {storage.redact_uri(settings.resolved_catalog_uri())}")
        return 1
    print(status.render(lines))
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Register blocks, create the work pool and apply prefect.yaml on the current server."""
    from prefect.settings import PREFECT_API_URL

    from admin.setup import setup
    from admin.stack import LocalStack

    settings = LakeSettings()
    api_url = PREFECT_API_URL.value()
    if not api_url:
        print("PREFECT_API_URL is not set: point it at a Prefect server first", file=sys.stderr)
        return 2
    setup(LocalStack(api_url=api_url, home=settings.resolved_home()), settings)
    print(f"lakeops is set up on {api_url}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Start what is missing, run the story, print the summary, stop what was started."""
    from admin.demo import main as demo

    demo(days=args.days)
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    """Write prefect.yaml and prefect.ecs.yaml from the dataset declarations (--check: only say if they are in step)."""
    from admin import deployments, ecs
    from admin.stack import PROJECT_DIR

    registry = _registry()
    out_of_step = 0
    for name, text in {"prefect.yaml": deployments.render(registry), ecs.DEPLOYMENT_FILE: ecs.render(registry)}.items():
        path = PROJECT_DIR / name
        if args.check:
            in_step = path.exists() and path.read_text() == text
            print(f"{path.name} is {'in step with' if in_step else 'OUT OF STEP with'} the declarations")
            out_of_step += not in_step
            continue
        changed = deployments.write_text(path, text)
        count = len(deployments.dataset_deployments(registry))
        print(f"{path.name} {'written' if changed else 'already in step'}: {count} dataset deployments")
    return 1 if out_of_step else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakeops", description="Readiness signals, provenance and operations for Iceberg pipelines on Prefect."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help=cmd_status.__doc__).set_defaults(func=cmd_status)
    sub.add_parser("setup", help=cmd_setup.__doc__).set_defaults(func=cmd_setup)
    deploy = sub.add_parser("deployments", help=cmd_deployments.__doc__)
    deploy.add_argument("--check", action="store_true", help="exit 1 when a deployment file is out of step")
    deploy.set_defaults(func=cmd_deployments)
    demo = sub.add_parser("demo", help=cmd_demo.__doc__)
    demo.add_argument("--days", type=int, default=4, choices=range(1, 32), metavar="1..31")
    demo.set_defaults(func=cmd_demo)
    _versioning_commands(sub)
    release_cli.add_commands(sub)
    metrics_cli.add_commands(sub)
    return parser


def _selector(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--snapshot", type=int, help="a snapshot id")
    group.add_argument("--as-of", help="an ISO 8601 time, e.g. 2026-11-20T06:00Z (UTC when no offset)")
    group.add_argument("--tag", help="a tag or branch name, e.g. last-known-good")


def _versioning_commands(sub: argparse._SubParsersAction) -> None:
    show = sub.add_parser("show", help=cmd_show.__doc__)
    show.add_argument("table", type=_table)
    _selector(show, required=False)
    show.add_argument("--window", help="only this window's rows (2013-01-02, or 2013-01-02T05 for an hour)")
    show.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    show.set_defaults(func=cmd_show)

    hist = sub.add_parser("history", help=cmd_history.__doc__)
    hist.add_argument("table", type=_table)
    hist.add_argument("--limit", type=int, default=None, help="newest N snapshots only")
    hist.set_defaults(func=cmd_history)

    rep = sub.add_parser("replay", help=cmd_replay.__doc__)
    rep.add_argument("--dataset", required=True, help="the dataset to replay, e.g. flights")
    rep.add_argument("--version", required=True, help="a transform version of the dataset, e.g. v2")
    rep.add_argument("--start", type=date.fromisoformat, help="first window (default: last known good)")
    rep.add_argument("--end", type=date.fromisoformat, help="last window (default: the newest)")
    rep.add_argument("--branch", help="output branch (default: replay-<version>)")
    rep.add_argument("--no-validate", action="store_true", help="skip the validation suites")
    rep.set_defaults(func=cmd_replay)

    back = sub.add_parser("rollback", help=cmd_rollback.__doc__)
    back.add_argument("table", type=_table)
    _selector(back, required=True)
    back.add_argument("--force", action="store_true", help="roll back even onto corrected input")
    back.set_defaults(func=cmd_rollback)

    keep = sub.add_parser("maintain", help=cmd_maintain.__doc__)
    keep.add_argument("--table", type=_table, action="append", help="only this table (repeatable)")
    keep.add_argument("--keep-last", type=int, default=50, help="newest snapshots always kept")
    keep.add_argument("--max-age-hours", type=float, default=24 * 7, help="keep snapshots younger than this")
    keep.add_argument("--orphan-grace-minutes", type=float, default=60, help="never delete newer files")
    keep.add_argument("--compact-min-files", type=int, default=8, help="compact partitions with this many files")
    keep.set_defaults(func=cmd_maintain)

    watch = sub.add_parser("sla", help="readiness contracts and their windows")
    watch_sub = watch.add_subparsers(dest="sla_command", required=True)
    watch_sub.add_parser("list", help=cmd_sla_list.__doc__).set_defaults(func=cmd_sla_list)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (LakeopsError, ValueError) as exc:
        print(f"lakeops {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
