"""The demo's SLA story: weather is late for a day. Its deadline passes, the owner is alerted, the join is
built on the last good weather marked stale, and caught up when the real file lands."""

from datetime import UTC, date, datetime
from pathlib import Path

from prefect.deployments import run_deployment
from pyiceberg.catalog import Catalog

from admin import runs
from admin.automations import MISSED_DEPLOYMENT, opener
from admin.receiver import Receiver
from admin.stack import LocalStack
from declarations.weather import landing as weather_feed
from lakeops.datasets.registry import Registry
from lakeops.iceberg import lake
from lakeops.readiness import contracts, markers, sla

JOINED = "flight_weather.gold"


def tell(
    stack: LocalStack, catalog: Catalog, registry: Registry, receiver: Receiver, landing_dir: Path, day: date
) -> None:
    weather = registry.dataset("weather")
    contract = contracts.of(registry, weather)
    joined = registry.layer(JOINED)
    print(f"\n5. SLA: the weather file for {day} is late. Its window opens (by hand here; on schedule at")
    buffer = contract.buffer.total_seconds()
    print(f"   {contract.expected_at:%H:%M} UTC in production) and nothing arrives within the {buffer:.0f} s buffer.")
    opened = run_deployment(
        opener(contract), parameters={"params": {"dataset": contract.dataset, "window": day.isoformat()}}, timeout=120
    )
    missed = runs.wait_for_run(MISSED_DEPLOYMENT, lambda r: r.parameters["params"].get("window") == day.isoformat())
    alert = receiver.wait_for(f"{contract.dataset} {day.isoformat()} missed its deadline", timeout=60)
    print(f"   window opened ({opened.state_name}); deadline missed -> {missed.state_name}; the owner was told:")
    print(f"     {alert.subject}")
    stale = runs.wait_for_joined(registry, JOINED, day, after=missed, timeout=180)
    marker = markers.read_marker(lake.load(catalog, joined.table), day.isoformat())
    print(
        f"   {joined.table} {day} built on the last good weather: run {stale.state_name}, "
        f"marker stale={marker.stale if marker else '?'}"
    )
    weather_feed.drop_day_file(landing_dir, day)
    producer = runs.run_producer(weather, day)
    fresh = runs.wait_for_joined(registry, JOINED, day, after=producer, timeout=180)
    caught_up = receiver.wait_for(f"{contract.dataset} {day.isoformat()} caught up", timeout=60)
    marker = markers.read_marker(lake.load(catalog, joined.table), day.isoformat())
    facts = sla.read(catalog, contract.dataset, day.isoformat())
    state = sla.window_state(contract, day.isoformat(), facts, datetime.now(UTC))
    print(
        f"   the real file lands: {joined.table} rebuilt {fresh.state_name}, stale={marker.stale if marker else '?'};"
    )
    print(f"   SLA state of the window: {state.state}; told: {caught_up.subject}")
