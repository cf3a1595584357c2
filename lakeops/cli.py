"""`lakeops ...`: one thin function per command. The one core module that may import Prefect."""

import argparse
import sys
from collections.abc import Sequence

from lakeops import lake, status
from lakeops.datasets import ALL_TABLES
from lakeops.settings import LakeSettings


def cmd_status(args: argparse.Namespace) -> int:
    """List the tables with their current snapshot, row count and last readiness signal."""
    settings = LakeSettings()
    catalog = lake.open_catalog(settings.catalog_name, lake.embedded_properties(settings))
    lines = status.status(catalog, ALL_TABLES)
    if not lines:
        print(f"no lakeops tables in catalog {settings.resolved_catalog_uri()}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakeops", description="Readiness signals, provenance and operations for Iceberg pipelines on Prefect."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help=cmd_status.__doc__).set_defaults(func=cmd_status)
    sub.add_parser("setup", help=cmd_setup.__doc__).set_defaults(func=cmd_setup)
    demo = sub.add_parser("demo", help=cmd_demo.__doc__)
    demo.add_argument("--days", type=int, default=4, choices=range(1, 32), metavar="1..31")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
