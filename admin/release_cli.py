"""`lakeops release start | approve | reject | rollback | list | show`."""

import argparse
import getpass
import json
from datetime import date

from admin import lakehouse
from lakeops.datasets import registry as registry_file
from lakeops.release import promotion, release_log
from lakeops.settings import LakeSettings


def _catalog():  # noqa: ANN202 - a pyiceberg Catalog
    return lakehouse.open_catalog(LakeSettings(), ensure=True)


def _releasable() -> list[str]:
    """Datasets that declare a release scope."""
    return sorted(d.name for d in registry_file.load(LakeSettings().registry).datasets if d.release)


def cmd_start(args: argparse.Namespace) -> int:
    """Start the release deployment: blue and green on pinned input, compared, then promoted or held."""
    from admin import releases

    thresholds = {"max_changed_fraction": args.max_changed_fraction, "float_tolerance": args.float_tolerance}
    params = {
        "dataset": args.dataset,
        "green_version": args.green,
        "blue_version": args.blue,
        "start": args.start and args.start.isoformat(),
        "end": args.end and args.end.isoformat(),
        "thresholds": thresholds,
    }
    run = releases.start(params)
    print(f"release run {run.name} ({run.id}) started: {releases.ui_link(run)}")
    if not args.wait:
        return 0
    run = releases.wait_until_settled(run.id, args.timeout)
    state = run.state
    print(f"release run {run.name}: {state and state.name}: {state and state.message or ''}")
    if state and state.is_paused():
        print(
            f"held for a decision: lakeops release approve {args.dataset} --reason ... "
            f"(or reject), or in the Prefect UI"
        )
    return 0 if state and (state.is_paused() or state.is_completed()) else 1


def cmd_decide(args: argparse.Namespace) -> int:
    """Give a held release its decision (the paused run resumes and promotes or rejects)."""
    from admin import releases

    approve = args.release_command == "approve"
    release_id = releases.decide(_catalog(), args.dataset, approve, args.reason, args.by, args.release)
    print(f"release {release_id} {'approved' if approve else 'rejected'} by {args.by}: {args.reason}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Point the dataset's tables back at the previous release, one commit per table."""
    dataset = registry_file.load(LakeSettings().registry).dataset(args.dataset)
    done = promotion.rollback(_catalog(), dataset, getpass.getuser(), args.reason, args.force)
    print(
        f"release {done.release_id} rolled back; main restored to {done.restored}; "
        f"live now: {done.live_now or 'the state before any release'}"
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Every release with its status, versions, windows and verdict."""
    found = release_log.releases(_catalog(), args.dataset)
    print(
        f"{'release':<22} {'dataset':<14} {'status':<11} {'blue':<5} {'green':<5} {'windows':<24} "
        f"{'verdict':<19} {'by':<16} at (UTC)"
    )
    for r in found:
        windows = sorted(r.first.windows)
        span = f"{windows[0]}..{windows[-1]}" if windows else "-"
        last = r.entries[-1]
        print(
            f"{r.release_id:<22} {r.dataset:<14} {r.status:<11} {r.first.blue_version:<5} "
            f"{r.first.green_version:<5} {span:<24} {r.verdict or '-':<19} {last.actor[:16] or '-':<16} "
            f"{last.at:%Y-%m-%d %H:%M:%S}"
        )
    if not found:
        print("(no releases)")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """One release's events, verdict, counts and sample."""
    found = release_log.find(_catalog(), args.release_id)
    if found is None:
        raise ValueError(f"no release {args.release_id}")
    for e in found.entries:
        print(f"{e.at:%Y-%m-%d %H:%M:%S} {e.event:<11} {e.actor or '-'} {e.reason}")
    compared = found.last(release_log.Event.COMPARED)
    if compared:
        print(
            json.dumps(
                {"verdict": compared.verdict, "tables": compared.summary, "sample": compared.sample[:10]},
                indent=2,
                default=str,
            )
        )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    rel = sub.add_parser("release", help="blue-green releases of a dataset's transforms")
    rel_sub = rel.add_subparsers(dest="release_command", required=True)
    datasets = _releasable()

    start = rel_sub.add_parser("start", help=cmd_start.__doc__)
    start.add_argument("--dataset", required=True, choices=datasets, help="the dataset to release")
    start.add_argument("--green", required=True, help="candidate transform version of the dataset, e.g. v2")
    start.add_argument("--blue", help="current version (default: the live release's)")
    start.add_argument("--start", type=date.fromisoformat, help="first window (default: the first)")
    start.add_argument("--end", type=date.fromisoformat, help="last window (default: the newest)")
    start.add_argument("--max-changed-fraction", type=float, default=0.0, help="changed rows promoted unasked")
    start.add_argument("--float-tolerance", type=float, default=1e-9, help="absolute, on float columns")
    start.add_argument("--wait", action="store_true", help="wait until promoted, rejected, failed or held")
    start.add_argument("--timeout", type=float, default=600, help="seconds to wait with --wait")
    start.set_defaults(func=cmd_start)

    for verb in ("approve", "reject"):
        decide = rel_sub.add_parser(verb, help=f"{verb} the held release of a dataset")
        decide.add_argument("dataset", choices=datasets)
        decide.add_argument("--reason", required=True, help="kept in the release log")
        decide.add_argument("--by", default=getpass.getuser(), help="who decides (default: you)")
        decide.add_argument("--release", help="release id, when several are held")
        decide.set_defaults(func=cmd_decide)

    back = rel_sub.add_parser("rollback", help=cmd_rollback.__doc__)
    back.add_argument("dataset", choices=datasets)
    back.add_argument("--reason", default="", help="kept in the release log")
    back.add_argument("--force", action="store_true", help="discard commits made since the promotion")
    back.set_defaults(func=cmd_rollback)

    listing = rel_sub.add_parser("list", help=cmd_list.__doc__)
    listing.add_argument("dataset", nargs="?", choices=datasets)
    listing.set_defaults(func=cmd_list)

    show = rel_sub.add_parser("show", help=cmd_show.__doc__)
    show.add_argument("release_id")
    show.set_defaults(func=cmd_show)
