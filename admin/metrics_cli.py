"""`lakeops metrics [--days N] [--dataset D] [--json]`: the three dimensions, from the server's runs and the lake."""

import argparse
import json
from datetime import UTC, datetime, timedelta

from pyiceberg.catalog import Catalog

from admin import lakehouse
from lakeops.metrics import history, report
from lakeops.settings import LakeSettings


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print reliability, velocity and cost from the server's flow runs and the lake's history (writes nothing)."""
    settings = LakeSettings()
    catalog = lakehouse.open_catalog(settings, ensure=True)
    computed = current(catalog, args.days, args.dataset, args.as_of, args.cost_model)
    if args.json:
        print(json.dumps(computed.to_dict(), indent=2))
        return 0
    print("\n".join(report.summary_lines(computed)), end="\n\n")
    print(computed.to_markdown())
    return 0


def current(
    catalog: Catalog,
    days: int = 28,
    dataset: str | None = None,
    as_of: datetime | None = None,
    cost_model: str = "default",
) -> report.Report:
    """The report as of now (or `as_of`): the server's runs merged over the lake's history."""
    from prefect.client.orchestration import get_client

    from blocks.cost_model import CostModel
    from flows import platform_metrics

    now = (as_of or datetime.now(UTC)).astimezone(UTC)
    since = now - timedelta(days=max(days, *report.PERIODS_DAYS))
    with get_client(sync_client=True) as client:
        server = platform_metrics.read_server(client, since, now, platform_metrics.usage_folder(None))
    merged = history.merge(history.read_facts(catalog), server.facts)
    promotions = platform_metrics.promotions_of(catalog, merged)
    prices = platform_metrics.saved_prices(cost_model) or CostModel().prices()
    return report.compute(merged, promotions, server.deployed, prices, now, days, dataset)


def add_commands(sub: argparse._SubParsersAction) -> None:
    metrics = sub.add_parser("metrics", help=cmd_metrics.__doc__)
    days = "velocity and cost over the last N days (reliability: 1, 7 and 28 days)"
    metrics.add_argument("--days", type=int, default=28, choices=range(1, 367), metavar="1..366", help=days)
    metrics.add_argument("--dataset", help="one dataset's runs and releases only, e.g. flights")
    metrics.add_argument("--json", action="store_true", help="every figure as JSON")
    metrics.add_argument("--as-of", type=_instant, help="as of this ISO 8601 time (UTC when no offset); default now")
    metrics.add_argument("--cost-model", default="default", help="CostModel block document (default: default)")
    metrics.set_defaults(func=cmd_metrics)


def _instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
