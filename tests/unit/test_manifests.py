"""Manifests stay few: appends merge a table's small manifests (Iceberg's merge-append), so a scan plan
opens a handful of manifests, not one per commit; tables made before the setting gain it."""

from datetime import date, timedelta

import pandas as pd

from lakeops.iceberg import lake
from lakeops.iceberg.provenance import Provenance

from .flights import GOLD, GOLD_DAILY_DELAYS, REGISTRY

MERGE = "commit.manifest-merge.enabled"


def day_rows(day: date) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flight_date": [day],
            "origin": ["JFK"],
            "flights": [10],
            "cancelled": [1],
            "mean_dep_delay": [2.5],
            "mean_arr_delay": [None],
            "on_time_arrivals": [7],
            "_batch_id": [f"{day}-abc"],
        }
    )


def append_days(table, days: int) -> None:  # noqa: ANN001
    for n in range(days):
        day = date(2013, 1, 1) + timedelta(days=n)
        made = Provenance("test", "run-1", day.isoformat(), f"batch-{n}")
        lake.append_rows(table, lake.to_arrow(day_rows(day), GOLD.schema), made)


def manifests(table) -> int:  # noqa: ANN001
    return len(table.current_snapshot().manifests(table.io))


def test_twenty_appends_leave_a_few_manifests_and_every_row(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)

    append_days(gold, 20)

    assert manifests(gold) < 4  # one per commit before: 20
    assert len(gold.scan().to_arrow()) == 20
    assert len(gold.snapshots()) == 20  # merging rewrites manifests, not history: each append is its snapshot


def test_a_table_made_without_the_setting_gains_it_and_an_owners_value_is_kept(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    with gold.transaction() as tx:
        tx.remove_properties(MERGE)
        tx.set_properties({"commit.manifest.min-count-to-merge": "50"})  # the owner's choice
    append_days(gold, 6)
    assert manifests(gold) == 6  # not merged: the table does not enable it

    lake.ensure_tables(catalog, REGISTRY)

    again = lake.load(catalog, GOLD_DAILY_DELAYS)
    assert again.properties[MERGE] == "true"
    assert again.properties["commit.manifest.min-count-to-merge"] == "50"
