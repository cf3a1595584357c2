"""The demo's self-healing story: a drifted file quarantined and alerted (through a webhook that fails
once and is retried), and late records that extend an earlier window."""

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
from pyiceberg.catalog import Catalog

from admin import runs
from admin.receiver import Receiver
from lakeops.datasets.names import BRONZE_FLIGHTS, GOLD_DAILY_DELAYS, QUARANTINE_FLIGHTS
from lakeops.datasets.windows import Window
from lakeops.iceberg import lake
from lakeops.ingest import landing

HELD_BACK = 5  # flights the source "finds" a day late


def drop_short(landing_dir: Path, day: date) -> pd.DataFrame:
    """Drop the day's file without its last few flights; return those held back."""
    rows = landing.day_rows(day)
    landing.drop_day_file(landing_dir, day, rows.head(len(rows) - HELD_BACK).to_csv(index=False))
    return rows.tail(HELD_BACK)


def drift(catalog: Catalog, receiver: Receiver, landing_dir: Path, day: date) -> None:
    print("\n3. A file whose `dep_delay` column is now called `departure_delay`: schema drift. The batch is")
    print("   quarantined whole and the owner alerted; the alert webhook answers 503 once (a transient failure).")
    rows = landing.day_rows(day).rename(columns={"dep_delay": "departure_delay"})
    landing.drop_day_file(landing_dir, day, rows.to_csv(index=False))
    receiver.fail_next, attempts = 1, receiver.attempts
    failed = runs.run_producer(day)
    kept = lake.read(lake.load(catalog, QUARANTINE_FLIGHTS), Window(day).date_filter("window"))
    alert = receiver.wait_for(f"{day.isoformat()}: schema drift", timeout=60)
    print(f"   {day}: producer {failed.state_name}; {len(kept)} raw lines in quarantine.flights, none in Bronze")
    print(f"   webhook: {receiver.attempts - attempts} POSTs, the first answered 503, retried with backoff, delivered:")
    print("     " + alert.subject)
    print("\n".join(f"     | {line}" for line in alert.body.splitlines()[:4]))


def late_records(catalog: Catalog, landing_dir: Path, day: date, early: date, held: pd.DataFrame) -> None:
    print(f"\n4. Late records: the file for {day} also carries the {len(held)} flights of {early} the source")
    print("   found late (within the contract's 3 days): they join their window, which Silver and Gold rebuild.")
    before = _flights(catalog, early)
    landing.drop_day_file(landing_dir, day, pd.concat([landing.day_rows(day), held]).to_csv(index=False))
    producer = runs.run_producer(day)
    runs.follow_window(catalog, Window(day), producer)
    bronze = lake.snapshot_of_run(lake.load(catalog, BRONZE_FLIGHTS), str(producer.id))
    silver = runs.wait_for_run(
        f"build-silver-flights/{runs.DEPLOYMENT}", runs.consumer_of(bronze.snapshot_id, Window(early), producer)
    )
    runs.wait_for_run(
        f"build-gold-daily-delays/{runs.DEPLOYMENT}",
        lambda run: run.parameters["params"].get("window") == early.isoformat() and run.created > silver.created,
    )
    print(
        f"   {early}: gold.daily_delays flights {before} -> {_flights(catalog, early)} "
        f"(window extended; Silver run {silver.state_name})"
    )


def _flights(catalog: Catalog, day: date) -> int:
    rows = lake.read(lake.load(catalog, GOLD_DAILY_DELAYS), Window(day).date_filter())
    return int(rows["flights"].sum())


def next_free_day(last: date) -> date:
    return last + timedelta(days=1)
