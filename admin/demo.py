"""The demo story: two teams' sources drop day files; readiness events drive each team's layers and the
analytics team's join, which starts only when both inputs of a day are ready."""

import os
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from prefect.settings import PREFECT_API_URL, temporary_settings
from pyiceberg.catalog import Catalog

from admin import demo_healing, demo_releases, demo_sla, metrics_cli, runs
from admin.receiver import Receiver, start_receiver
from admin.setup import setup
from admin.stack import PROJECT_DIR, LocalStack, ensure_server
from declarations.flights import landing as flights_feed
from declarations.weather import landing as weather_feed
from lakeops.datasets import registry as registry_file
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.metrics import report
from lakeops.readiness import status
from lakeops.settings import LakeSettings

FIRST_DAY = date(2013, 1, 1)
DEMO_BUFFER_SECONDS = 15  # the demo's readiness deadlines, so that a missed one is seen within a minute
JOINED = "flight_weather.gold"


def demo_registry(settings: LakeSettings) -> Path:
    """The project's registry with the demo's short deadlines (an environment's override, as a team would write)."""
    path = settings.resolved_home() / "datasets.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (PROJECT_DIR / "datasets.yaml").read_text().replace("paths: []", f"paths: [{PROJECT_DIR}]")
    overrides = "{" + ", ".join(f"{d}: {{buffer: {DEMO_BUFFER_SECONDS}}}" for d in ("flights", "weather")) + "}"
    path.write_text(text.replace("readiness: {}", f"readiness: {overrides}"))
    return path


def run_story(stack: LocalStack, settings: LakeSettings, days: int, receiver: Receiver) -> None:
    registry = registry_file.load(settings.registry)
    block = setup(stack, settings)
    catalog = block.catalog()
    stack.start_worker(LAKEOPS_REGISTRY=str(settings.registry))
    stack.wait_until_warm()  # the story's lags are the warm worker's, not its first warm-up
    landing_dir = Path(block.landing)
    flights, weather = registry.dataset("flights"), registry.dataset("weather")
    print(f"\nPrefect UI: {stack.ui_url}\nlake: {settings.resolved_home()}\nalerts: {receiver.url}\n")
    print("1. Two teams' sources drop one file per day. Each ready event starts the next layer of its team;")
    print(f"   the analytics team's {registry.layer(JOINED).table} starts only when both teams' Silver are ready.")
    traces: list[runs.WindowTrace] = []
    last = FIRST_DAY + timedelta(days=days - 1)
    held = pd.DataFrame()
    for offset in range(days):
        day = FIRST_DAY + timedelta(days=offset)
        if day == last:
            held = demo_healing.drop_short(landing_dir, day)  # a few of its flights arrive a day late
        else:
            flights_feed.drop_day_file(landing_dir, day)
        weather_feed.drop_day_file(landing_dir, day)
        trace = runs.follow_window(catalog, registry, flights, Window(day), runs.run_producer(flights, day))
        sky = runs.follow_window(catalog, registry, weather, Window(day), runs.run_producer(weather, day))
        joined = runs.wait_for_joined(registry, JOINED, day, after=sky.last)
        traces.append(trace)
        print(f"   {day}  {trace.describe()}")
        print(f"               {sky.describe()}  -> {registry.layer(JOINED).table} {joined.state_name}")
    print("\n2. The same flights file delivered again: Bronze commits nothing new; the signal is re-sent, and the")
    print("   join of that day is rebuilt once.")
    before = runs.joined_runs(registry, JOINED, FIRST_DAY)
    again = runs.run_producer(flights, FIRST_DAY)
    runs.follow_window(catalog, registry, flights, Window(FIRST_DAY), again)
    runs.wait_for_joined(registry, JOINED, FIRST_DAY, after=again)
    bronze = lake.load(catalog, flights.layer("bronze").table)
    copies = len(lake.read(bronze, flights.layer("bronze").window.filter(Window(FIRST_DAY)), columns=("_batch_id",)))
    print(
        f"   {FIRST_DAY}: producer {again.state_name}, bronze rows for the day: {copies} (one copy); join runs "
        f"{len(before)} -> {len(runs.joined_runs(registry, JOINED, FIRST_DAY))}"
    )
    demo_healing.drift(catalog, registry, receiver, landing_dir, last + timedelta(days=2))
    demo_healing.late_records(catalog, registry, landing_dir, last + timedelta(days=1), last, held)
    demo_sla.tell(stack, catalog, registry, receiver, landing_dir, last + timedelta(days=1))
    demo_releases.tell(stack, catalog, registry, FIRST_DAY)
    _print_summary(stack, catalog, registry, traces)


def _print_summary(stack: LocalStack, catalog: Catalog, registry: Registry, traces: list[runs.WindowTrace]) -> None:
    print("\nTables (lakeops status):")
    print(status.render(status.status(catalog, tuple(lake.table_specs(registry)))))
    joined = registry.layer(JOINED)
    rows = lake.read(lake.load(catalog, joined.table), joined.window.filter(Window(FIRST_DAY)))
    print(f"\n{joined.table} on {FIRST_DAY}:\n{rows.drop(columns=['_batch_id']).to_string(index=False)}")
    lags = sorted(t.lag_s(len(t.tables) - 1) for t in traces)
    print(
        f"\nbronze.flights commit -> gold.daily_delays commit: median {lags[len(lags) // 2]:.1f}s over {len(lags)} days"
    )
    print("\nPlatform metrics of the demo's own runs (lakeops metrics):")
    print("\n".join(f"   {line}" for line in report.summary_lines(metrics_cli.current(catalog, days=1))))
    ui = stack.ui_url
    print(f"Flow runs: {ui}/runs   Deployments: {ui}/deployments   Events (assets too): {ui}/events")


def main(days: int = 4) -> None:
    receiver = start_receiver()
    settings = LakeSettings()
    if not settings.alert_webhook_url:  # the demo's alerts go to a local receiver it prints from
        settings = settings.model_copy(update={"alert_webhook_url": receiver.url})
    settings = settings.model_copy(update={"registry": demo_registry(settings)})
    os.environ["LAKEOPS_REGISTRY"] = str(settings.registry)  # this process's flows and CLI read the same registry
    started = time.monotonic()
    stack = ensure_server(settings.resolved_home())
    try:
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            run_story(stack, settings, days, receiver)
    finally:
        stack.stop()
        receiver.stop()
    print(f"\nDemo finished in {time.monotonic() - started:.0f}s; stopped what it started.")
