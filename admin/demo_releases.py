"""The demo's release story: a refactor promoted by itself, a logic change held, approved, rolled back."""

from datetime import date

from prefect.deployments import run_deployment
from pyiceberg.catalog import Catalog

from admin import releases, runs
from admin.stack import LocalStack
from lakeops.datasets.registry import Registry
from lakeops.release import promotion, release_log

FLIGHTS = "flights"
GOLD_DAILY_DELAYS = "gold.daily_delays"


def tell(stack: LocalStack, catalog: Catalog, registry: Registry, day: date) -> None:
    print("\n6. Release a refactor (v1.1): blue (v1) and green (v1.1) read the same pinned Bronze snapshots")
    print("   into release branches; identical output is promoted with no one asked.")
    run = run_deployment(
        releases.release_deployment(FLIGHTS),
        parameters={"params": {"dataset": FLIGHTS, "green_version": "v1.1", "blue_version": "v1"}},
        timeout=600,
        poll_interval=0.5,
    )
    first = _release_of(catalog, run)
    print(f"   {first.release_id}: {first.verdict} -> {run.state_name}   {runs.run_url(stack.ui_url, run)}")

    print("\n7. Release a logic change (v2: a diverted flight counts as cancelled): outside thresholds, held.")
    held = releases.wait_until_settled(
        releases.start({"dataset": FLIGHTS, "green_version": "v2", "blue_version": "v1.1"}).id
    )
    second = _release_of(catalog, held)
    gold = second.last(release_log.Event.COMPARED).summary[GOLD_DAILY_DELAYS]
    print(
        f"   {second.release_id}: {second.verdict}, run {held.state_name}; gold.daily_delays: "
        f"{gold['diff']['changed']} of {gold['rows_blue']} rows changed"
    )
    sample = [r for r in second.last(release_log.Event.COMPARED).sample if r["table"] == GOLD_DAILY_DELAYS]
    for row in sample[:3]:
        print(
            f"     {row['flight_date']} {row['origin']}: cancelled {row.get('cancelled.blue')} -> "
            f"{row.get('cancelled.green')}"
        )
    print(f"   the owner was alerted with the diff; decision asked in the UI: {runs.run_url(stack.ui_url, held)}")
    before = _cancelled(catalog, day)
    releases.decide(catalog, FLIGHTS, approve=True, reason="finance agreed diverted = cancelled", by="demo")
    promoted = releases.wait_until_settled(held.id)
    print(
        f"   approved (lakeops release approve flights --reason ...) -> {promoted.state_name}; a plain "
        f"pyiceberg reader of gold.daily_delays on {day}: cancelled {before} -> {_cancelled(catalog, day)}"
    )

    done = promotion.rollback(catalog, registry.dataset(FLIGHTS), "demo", "demo: roll back the logic change")
    print(
        f"\n8. Roll back (lakeops release rollback flights): one commit per table; live again: {done.live_now} "
        f"({release_log.live_version(catalog, FLIGHTS)}); cancelled on {day}: {_cancelled(catalog, day)}"
    )


def _release_of(catalog: Catalog, run) -> release_log.Release:  # noqa: ANN001 - a FlowRun
    return next(r for r in release_log.releases(catalog, FLIGHTS) if r.flow_run_id == str(run.id))


def _cancelled(catalog: Catalog, day: date) -> int:
    rows = catalog.load_table(GOLD_DAILY_DELAYS).scan().to_pandas()
    return int(rows.loc[rows["flight_date"] == day, "cancelled"].sum())
