"""The demo story: a source drops day files, the producer ingests them, events drive Silver and Gold."""

import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from prefect.settings import PREFECT_API_URL, temporary_settings
from pyiceberg.catalog import Catalog

from admin import demo_healing, demo_releases, runs
from admin.receiver import Receiver, start_receiver
from admin.setup import setup
from admin.stack import LocalStack, ensure_server
from lakeops.datasets.names import ALL_TABLES, BRONZE_FLIGHTS, GOLD_DAILY_DELAYS
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.ingest import landing
from lakeops.readiness import status
from lakeops.settings import LakeSettings

FIRST_DAY = date(2013, 1, 1)


def run_story(stack: LocalStack, settings: LakeSettings, days: int, receiver: Receiver) -> None:
    block = setup(stack, settings)
    catalog = block.catalog()
    stack.start_worker()
    landing_dir = Path(block.landing)
    print(f"\nPrefect UI: {stack.ui_url}\nlake: {settings.resolved_home()}\nalerts: {receiver.url}\n")
    print("1. The source system drops one file per day; each ready event starts the next layer.")
    traces: list[runs.WindowTrace] = []
    last = FIRST_DAY + timedelta(days=days - 1)
    held = pd.DataFrame()
    for offset in range(days):
        day = FIRST_DAY + timedelta(days=offset)
        if day == last:
            held = demo_healing.drop_short(landing_dir, day)  # a few of its flights arrive a day late
        else:
            landing.drop_day_file(landing_dir, day)
        trace = runs.follow_window(catalog, Window(day), runs.run_producer(day))
        traces.append(trace)
        print(
            f"   {day}  bronze {trace.bronze_snapshot} -> silver +{trace.silver_lag_s:.1f}s "
            f"-> gold +{trace.gold_lag_s:.1f}s   gold run {runs.run_url(stack.ui_url, trace.gold)}"
        )
    print("\n2. The same file delivered again: Bronze commits nothing new; the signal is re-sent.")
    again = runs.run_producer(FIRST_DAY)
    runs.follow_window(catalog, Window(FIRST_DAY), again)  # the re-published signal refreshes downstream
    bronze = lake.load(catalog, BRONZE_FLIGHTS)
    copies = len(lake.read(bronze, Window(FIRST_DAY).source_filter(), columns=("_batch_id",)))
    print(f"   {FIRST_DAY}: producer {again.state_name}, bronze rows for the day: {copies} (one copy)")
    demo_healing.drift(catalog, receiver, landing_dir, last + timedelta(days=2))
    demo_healing.late_records(catalog, landing_dir, last + timedelta(days=1), last, held)
    demo_releases.tell(stack, catalog, FIRST_DAY)
    _print_summary(stack, catalog, traces)


def _print_summary(stack: LocalStack, catalog: Catalog, traces: list[runs.WindowTrace]) -> None:
    print("\nTables (lakeops status):")
    print(status.render(status.status(catalog, ALL_TABLES)))
    gold = lake.read(lake.load(catalog, GOLD_DAILY_DELAYS), Window(FIRST_DAY).date_filter())
    print(f"\ngold.daily_delays on {FIRST_DAY}:\n{gold.to_string(index=False)}")
    lags = sorted(t.gold_lag_s for t in traces)
    print(f"\nBronze commit -> Gold commit: median {lags[len(lags) // 2]:.1f}s over {len(lags)} windows")
    print(f"Flow runs: {stack.ui_url}/runs   Events: {stack.ui_url}/events   Automations: {stack.ui_url}/automations")


def main(days: int = 4) -> None:
    receiver = start_receiver()
    settings = LakeSettings()
    if not settings.alert_webhook_url:  # the demo's alerts go to a local receiver it prints from
        settings = settings.model_copy(update={"alert_webhook_url": receiver.url})
    started = time.monotonic()
    stack = ensure_server(settings.resolved_home())
    try:
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            run_story(stack, settings, days, receiver)
    finally:
        stack.stop()
        receiver.stop()
    print(f"\nDemo finished in {time.monotonic() - started:.0f}s; stopped what it started.")
