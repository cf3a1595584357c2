"""lakeops.status: what `lakeops status` lists and prints."""

from lakeops.datasets.names import TableRef
from lakeops.iceberg import lake
from lakeops.readiness import markers, status
from tests.unit.test_lake import PROVENANCE, gold_rows, signal

from .flights import ALL_TABLES, GOLD, GOLD_DAILY_DELAYS, QUARANTINE_FLIGHTS, SILVER_FLIGHTS


def test_status_lists_each_table_with_its_rows_and_last_signal(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    snapshot_id = lake.append_rows(gold, lake.to_arrow(gold_rows(["EWR", "JFK", "LGA"]), GOLD.schema), PROVENANCE)
    markers.write_marker(gold, signal("2013-01-02", snapshot_id))

    lines = {line.table: line for line in status.status(catalog, (*ALL_TABLES, TableRef("x", "y")))}

    assert set(lines) == {ref.identifier for ref in ALL_TABLES}
    assert (lines["gold.daily_delays"].snapshot_id, lines["gold.daily_delays"].rows) == (snapshot_id, 3)
    assert lines["gold.daily_delays"].last_signal.snapshot_id == snapshot_id
    assert (lines["bronze.flights"].snapshot_id, lines["bronze.flights"].rows) == (None, 0)
    assert lines[str(QUARANTINE_FLIGHTS)].last_signal is None
    assert lines[str(SILVER_FLIGHTS)].last_signal is None


def test_render_shows_each_table_with_its_snapshot_rows_and_signal(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    snapshot_id = lake.append_rows(gold, lake.to_arrow(gold_rows(["EWR", "JFK"]), GOLD.schema), PROVENANCE)
    markers.write_marker(gold, signal("2013-01-02", snapshot_id))

    text = status.render(status.status(catalog, ALL_TABLES))

    gold_line = next(line for line in text.splitlines() if line.startswith("gold.daily_delays"))
    assert str(snapshot_id) in gold_line and " 2 " in gold_line and "2013-01-02" in gold_line
    bronze_line = next(line for line in text.splitlines() if line.startswith("bronze.flights"))
    assert bronze_line.rstrip().endswith("-")
