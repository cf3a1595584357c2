"""The demo's self-healing story: a drifted file quarantined and alerted (through a webhook that fails
once and is retried), and late records that extend an earlier window."""

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import EqualTo

from admin import runs
from admin.receiver import Receiver
from declarations.flights import landing
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake

HELD_BACK = 5  # flights the source "finds" a day late


def drop_short(landing_dir: Path, day: date) -> pd.DataFrame:
    """Drop the day's file without its last few flights; return those held back."""
    rows = landing.day_rows(day)
    landing.drop_day_file(landing_dir, day, rows.head(len(rows) - HELD_BACK).to_csv(index=False))
    return rows.tail(HELD_BACK)


def drift(catalog: Catalog, registry: Registry, receiver: Receiver, landing_dir: Path, day: date) -> None:
    print("\n3. A file whose `dep_delay` column is now called `departure_delay`: schema drift. The batch is")
    print("   quarantined whole and the owner alerted; the alert webhook answers 503 once (a transient failure).")
    rows = landing.day_rows(day).rename(columns={"dep_delay": "departure_delay"})
    landing.drop_day_file(landing_dir, day, rows.to_csv(index=False))
    receiver.fail_next, attempts = 1, receiver.attempts
    flights = registry.dataset("flights")
    failed = runs.run_producer(flights, day)
    kept = lake.read(lake.load(catalog, flights.quarantine), EqualTo("window", day.isoformat()))
    alert = receiver.wait_for(f"{day.isoformat()}: schema drift", timeout=60)
    print(f"   {day}: producer {failed.state_name}; {len(kept)} raw lines in quarantine.flights, none in Bronze")
    print(f"   webhook: {receiver.attempts - attempts} POSTs, the first answered 503, retried with backoff, delivered:")
    print("     " + alert.subject)
    print("\n".join(f"     | {line}" for line in alert.body.splitlines()[:4]))


def late_records(
    catalog: Catalog, registry: Registry, landing_dir: Path, day: date, early: date, held: pd.DataFrame
) -> None:
    print(f"\n4. Late records: the file for {day} also carries the {len(held)} flights of {early} the source")
    print("   found late (within the declared 3 days): they join their window, which Silver and Gold rebuild.")
    flights = registry.dataset("flights")
    before = _flights(catalog, registry, early)
    landing.drop_day_file(landing_dir, day, pd.concat([landing.day_rows(day), held]).to_csv(index=False))
    producer = runs.run_producer(flights, day)
    runs.follow_window(catalog, registry, flights, Window(day), producer)
    bronze = lake.snapshot_of_run(lake.load(catalog, flights.layer("bronze").table), str(producer.id))
    silver = runs.wait_for_run(
        runs.builder(flights.layer("silver").table), runs.consumer_of(bronze.snapshot_id, Window(early), producer)
    )
    runs.wait_for_run(
        runs.builder(flights.layer("gold").table),
        lambda run: run.parameters["params"].get("window") == early.isoformat() and run.created > silver.created,
    )
    print(
        f"   {early}: gold.daily_delays flights {before} -> {_flights(catalog, registry, early)} "
        f"(window extended; Silver run {silver.state_name})"
    )


def _flights(catalog: Catalog, registry: Registry, day: date) -> int:
    gold = registry.layer("flights.gold")
    rows = lake.read(lake.load(catalog, gold.table), gold.window.filter(Window(day)))
    return int(rows["flights"].sum())


def next_free_day(last: date) -> date:
    return last + timedelta(days=1)
