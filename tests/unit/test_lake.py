"""lakeops.lake: tables in a real SQLite catalog, reads at a snapshot, markers, provenance."""

from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import pytest
from pyiceberg.expressions import AlwaysTrue, EqualTo
from pyiceberg.table.snapshots import Operation
from pyiceberg.types import StringType

from lakeops.datasets.names import TableRef
from lakeops.datasets.windows import Window
from lakeops.errors import SnapshotNotFound, TableNotFound
from lakeops.iceberg import commits, lake
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness import markers
from lakeops.readiness.ready import ReadySignal
from lakeops.versioning import maintenance

from . import lakes
from .flights import ALL_TABLES, GOLD, GOLD_DAILY_DELAYS, REGISTRY

EXPECTED_TABLES = {
    ("bronze", "flights"),
    ("silver", "flights"),
    ("gold", "daily_delays"),
    ("quarantine", "flights"),
}
PROVENANCE = Provenance("test", "run-1", "2013-01-02", "batch-1")


def tables_in(catalog) -> set[tuple[str, ...]]:
    return {t for ns in catalog.list_namespaces() for t in catalog.list_tables(ns)}


def gold_rows(origins: list[str], day: str = "2013-01-02") -> pd.DataFrame:
    n = len(origins)
    return pd.DataFrame(
        {
            "flight_date": [datetime.fromisoformat(day).date()] * n,
            "origin": origins,
            "flights": [10] * n,
            "cancelled": [1] * n,
            "mean_dep_delay": [2.5] * n,
            "mean_arr_delay": [None] * n,
            "on_time_arrivals": [7] * n,
            "_batch_id": ["2013-01-02-abc"] * n,
        }
    )


def signal(window: str, snapshot_id: int = 1) -> ReadySignal:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    return ReadySignal("gold.daily_delays", snapshot_id, window, 3, "abcd", "test", False, at)


def test_ensure_tables_creates_every_table(catalog):
    assert tables_in(catalog) >= EXPECTED_TABLES


def test_ensure_tables_twice_is_harmless_and_keeps_data(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    lake.append_rows(gold, lake.to_arrow(gold_rows(["JFK"]), GOLD.schema), PROVENANCE)

    lake.ensure_tables(catalog, REGISTRY)
    lake.ensure_tables(catalog, REGISTRY)

    assert tables_in(catalog) >= EXPECTED_TABLES
    assert len(lake.load(catalog, GOLD_DAILY_DELAYS).scan().to_pandas()) == 1


@pytest.mark.parametrize("ref", ALL_TABLES, ids=str)
def test_load_finds_each_table(catalog, ref):
    assert lake.load(catalog, ref).name() == (ref.namespace, ref.name)


@pytest.mark.parametrize("ref", [TableRef("bronze", "planes"), TableRef("nowhere", "flights")], ids=str)
def test_load_of_a_missing_table_raises_table_not_found(catalog, ref):
    with pytest.raises(TableNotFound, match=ref.identifier):
        lake.load(catalog, ref)


@pytest.mark.parametrize("with_data", [False, True], ids=["empty table", "table with data"])
def test_read_at_an_unknown_snapshot_raises_snapshot_not_found(catalog, with_data):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    if with_data:
        lake.append_rows(gold, lake.to_arrow(gold_rows(["JFK"]), GOLD.schema), PROVENANCE)

    with pytest.raises(SnapshotNotFound, match="123456789"):
        lake.read(gold, AlwaysTrue(), snapshot_id=123456789)


def test_read_sees_the_table_as_of_a_snapshot(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    first = lake.append_rows(gold, lake.to_arrow(gold_rows(["EWR"]), GOLD.schema), PROVENANCE)
    lake.append_rows(gold, lake.to_arrow(gold_rows(["JFK", "LGA"]), GOLD.schema), PROVENANCE)

    assert lake.read(gold, AlwaysTrue(), first)["origin"].tolist() == ["EWR"]
    assert sorted(lake.read(gold, AlwaysTrue())["origin"]) == ["EWR", "JFK", "LGA"]


def test_replace_rows_replaces_only_the_matching_rows(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    lake.append_rows(gold, lake.to_arrow(gold_rows(["EWR", "JFK"]), GOLD.schema), PROVENANCE)
    lake.append_rows(gold, lake.to_arrow(gold_rows(["EWR"], "2013-01-03"), GOLD.schema), PROVENANCE)
    fresh = gold_rows(["LGA"]).assign(flights=99)

    snapshot_id = lake.replace_rows(
        gold, lake.to_arrow(fresh, GOLD.schema), GOLD.window.filter(Window.parse("2013-01-02")), PROVENANCE
    )

    rows = gold.scan(snapshot_id=snapshot_id).to_pandas()
    by_day = rows.groupby(rows["flight_date"].astype(str))["origin"].apply(sorted).to_dict()
    assert by_day == {"2013-01-02": ["LGA"], "2013-01-03": ["EWR"]}
    assert gold.current_snapshot().snapshot_id == snapshot_id


def window(key: str):
    """The row filter of one day of gold.daily_delays."""
    return GOLD.window.filter(Window.parse(key))


def batch(origins: list[str], key: str, batch_id: str):
    return lake.to_arrow(gold_rows(origins, key).assign(_batch_id=batch_id), GOLD.schema)


def by_origin(table, snapshot_id: int | None = None) -> dict[tuple[str, str], str]:
    """(day, origin) -> the batch its row came from, as of `snapshot_id`; a duplicated row fails."""
    rows = lake.read(table, AlwaysTrue(), snapshot_id, ("flight_date", "origin", "_batch_id"))
    keys = list(zip(rows["flight_date"].astype(str), rows["origin"], strict=True))
    assert len(set(keys)) == len(keys), f"duplicated rows: {keys}"
    return dict(zip(keys, rows["_batch_id"], strict=True))


def test_a_window_overwrite_is_one_snapshot_that_drops_and_adds_files(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    first = lake.replace_rows(gold, batch(["EWR", "JFK"], "2013-01-02", "b1"), window("2013-01-02"), PROVENANCE)

    second = lake.replace_rows(gold, batch(["LGA"], "2013-01-02", "b2"), window("2013-01-02"), PROVENANCE)

    assert [s.snapshot_id for s in gold.snapshots()] == [first, second]
    summary = gold.snapshot_by_id(second).summary
    assert summary.operation == Operation.OVERWRITE and gold.snapshot_by_id(first).summary.operation == Operation.APPEND
    assert (summary["deleted-data-files"], summary["added-data-files"], summary["total-records"]) == ("1", "1", "1")
    assert by_origin(gold) == {("2013-01-02", "LGA"): "b2"}


def test_time_travel_never_lands_between_the_halves_of_an_overwrite(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    committed: dict[tuple[str, str], str] = {}
    states = {}
    for n, key in enumerate(["2013-01-02", "2013-01-03", "2013-01-02", "2013-01-04", "2013-01-03", "2013-01-02"]):
        origins = ["EWR", "JFK", "LGA"][: 1 + n % 3]
        where = window(key)
        snapshot_id = lake.replace_rows(gold, batch(origins, key, f"b{n}"), where, PROVENANCE)
        committed = {k: v for k, v in committed.items() if k[0] != key} | {(key, o): f"b{n}" for o in origins}
        states[snapshot_id] = committed

    history = [entry.snapshot_id for entry in gold.history()]
    assert history == list(states)  # one snapshot per commit, none in between
    for snapshot in gold.snapshots():
        assert by_origin(gold, snapshot.snapshot_id) == states[snapshot.snapshot_id]
        as_of = gold.snapshot_as_of_timestamp(snapshot.timestamp_ms)
        assert by_origin(gold, as_of.snapshot_id) == states[as_of.snapshot_id] != {}


def test_a_filter_selecting_part_of_a_file_rewrites_the_rest_in_the_same_snapshot(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    lake.append_rows(gold, batch(["EWR", "JFK"], "2013-01-02", "b1"), PROVENANCE)  # one file holds both
    lake.append_rows(gold, batch(["EWR"], "2013-01-03", "b1"), PROVENANCE)
    where = window("2013-01-02") & EqualTo("origin", "EWR")

    snapshot_id = lake.replace_rows(gold, batch(["EWR"], "2013-01-02", "b2"), where, PROVENANCE)

    assert len(gold.snapshots()) == 3
    summary = gold.snapshot_by_id(snapshot_id).summary
    assert (summary["deleted-data-files"], summary["added-data-files"], summary["deleted-records"]) == ("1", "2", "2")
    assert by_origin(gold) == {("2013-01-02", "EWR"): "b2", ("2013-01-02", "JFK"): "b1", ("2013-01-03", "EWR"): "b1"}


def test_append_rows_is_one_snapshot_on_the_provenance_branch(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    on_main = lake.append_rows(gold, batch(["EWR"], "2013-01-02", "b1"), PROVENANCE)
    gold.manage_snapshots().create_branch(on_main, "green").commit()

    on_green = lake.append_rows(gold, batch(["JFK"], "2013-01-02", "b2"), replace(PROVENANCE, branch="green"))

    assert lake.head(gold, "green").snapshot_id == on_green and lake.head(gold).snapshot_id == on_main
    assert gold.snapshot_by_id(on_green).parent_snapshot_id == on_main
    assert by_origin(gold, on_green) == {("2013-01-02", "EWR"): "b1", ("2013-01-02", "JFK"): "b2"}


def test_a_writer_on_stale_metadata_plans_again_and_replaces_the_window_whole(catalog):
    stale = lake.load(catalog, GOLD_DAILY_DELAYS)  # loaded before the other writer commits
    lake.replace_rows(
        lake.load(catalog, GOLD_DAILY_DELAYS),
        batch(["EWR", "JFK"], "2013-01-02", "a"),
        window("2013-01-02"),
        PROVENANCE,
    )
    retries = commits.COUNTS.retries

    last = lake.replace_rows(stale, batch(["LGA"], "2013-01-02", "b"), window("2013-01-02"), PROVENANCE)

    assert commits.COUNTS.retries == retries + 1
    assert by_origin(stale, last) == {("2013-01-02", "LGA"): "b"}  # the last commit's batch, whole
    assert len(stale.snapshots()) == 2


def test_a_stale_writer_of_other_rows_of_a_file_keeps_the_concurrent_commit_and_no_orphan(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    lake.append_rows(gold, batch(["EWR", "JFK"], "2013-01-02", "a"), PROVENANCE)  # one file holds both
    stale = lake.load(catalog, GOLD_DAILY_DELAYS)
    lake.replace_rows(
        gold, batch(["JFK"], "2013-01-02", "x"), window("2013-01-02") & EqualTo("origin", "JFK"), PROVENANCE
    )

    # Planned on the stale head, the file is rewritten without EWR; planned again, the JFK row is x's.
    lake.replace_rows(
        stale, batch(["EWR"], "2013-01-02", "y"), window("2013-01-02") & EqualTo("origin", "EWR"), PROVENANCE
    )

    assert by_origin(stale) == {("2013-01-02", "EWR"): "y", ("2013-01-02", "JFK"): "x"}
    on_disk = {p for p in lakes.files_under(stale) if p.endswith(".parquet")}
    referenced = {lakes.named(p) for p in maintenance.referenced_files(stale) if p.endswith(".parquet")}
    assert on_disk == referenced  # the rewrite of the lost attempt was deleted


def test_a_commit_that_raced_one_on_another_branch_retries(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    base = lake.append_rows(gold, batch(["EWR"], "2013-01-02", "a"), PROVENANCE)
    gold.manage_snapshots().create_branch(base, "green").commit()
    stale = lake.load(catalog, GOLD_DAILY_DELAYS)
    lake.append_rows(gold, batch(["JFK"], "2013-01-02", "g"), replace(PROVENANCE, branch="green"))
    retries = commits.COUNTS.retries

    # main has not moved, but the SQL catalog refuses the stale sequence number (a ValueError).
    lake.replace_rows(stale, batch(["LGA"], "2013-01-02", "m"), window("2013-01-02"), PROVENANCE)

    assert commits.COUNTS.retries == retries + 1
    assert by_origin(stale) == {("2013-01-02", "LGA"): "m"}


def test_commits_carry_the_provenance(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    made = replace(PROVENANCE, inputs={"silver.flights": 77}, transform_version="v1")

    snapshot_id = lake.append_rows(gold, lake.to_arrow(gold_rows(["JFK"]), GOLD.schema), made)

    snapshot = gold.snapshot_by_id(snapshot_id)
    assert snapshot.summary["lakeops.flow-run-id"] == "run-1"
    assert snapshot.summary["lakeops.input.silver.flights"] == "77"
    assert lake.provenance_of(snapshot) == made


def test_a_commit_made_without_lakeops_has_no_provenance(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    gold.append(lake.to_arrow(gold_rows(["JFK"]), GOLD.schema))

    assert lake.provenance_of(gold.current_snapshot()) is None


def test_snapshot_of_run_finds_the_newest_commit_of_that_run(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    rows = lake.to_arrow(gold_rows(["JFK"]), GOLD.schema)
    lake.append_rows(gold, rows, replace(PROVENANCE, flow_run_id="run-1"))
    newest_of_1 = lake.append_rows(gold, rows, replace(PROVENANCE, flow_run_id="run-1"))
    lake.append_rows(gold, rows, replace(PROVENANCE, flow_run_id="run-2"))

    assert lake.snapshot_of_run(gold, "run-1").snapshot_id == newest_of_1
    assert lake.snapshot_of_run(gold, "run-3") is None


def test_to_arrow_orders_and_types_columns_as_the_table_declares(catalog):
    frame = gold_rows(["JFK"])
    shuffled = frame[list(reversed(frame.columns))]

    table = lake.to_arrow(shuffled, GOLD.schema)

    assert table.schema.names == list(frame.columns)
    assert str(table.schema.field("flights").type) == "int64"


@pytest.mark.parametrize("ref", ALL_TABLES, ids=str)
def test_schema_fingerprint_is_stable(catalog, ref):
    first = lake.schema_fingerprint(lake.load(catalog, ref))

    assert lake.schema_fingerprint(lake.load(catalog, ref)) == first
    assert lake.schema_fingerprint(catalog.load_table(ref.identifier)) == first


def test_schema_fingerprint_tells_schemas_apart(catalog):
    prints = {lake.schema_fingerprint(lake.load(catalog, ref)) for ref in ALL_TABLES}

    assert len(prints) == len(ALL_TABLES)


def test_schema_fingerprint_changes_when_the_schema_evolves(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    before = lake.schema_fingerprint(gold)
    with gold.update_schema() as update:
        update.add_column("note", StringType())

    assert lake.schema_fingerprint(lake.load(catalog, GOLD_DAILY_DELAYS)) != before


def test_markers_are_absent_before_any_write(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)

    assert markers.read_marker(gold) is None
    assert markers.read_marker(gold, "2013-01-02") is None


def test_markers_round_trip_per_window_and_latest(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    day_2, day_3 = signal("2013-01-02", 1), signal("2013-01-03", 2)

    path = markers.write_marker(gold, day_2)
    markers.write_marker(gold, day_3)

    assert path.endswith("/_ready/2013-01-02.json")
    assert path.startswith(gold.location())
    assert markers.read_marker(gold, "2013-01-02") == day_2
    assert markers.read_marker(gold, "2013-01-03") == day_3
    assert markers.read_marker(gold) == day_3


def test_a_marker_rewritten_for_a_window_replaces_the_old_one(catalog):
    gold = lake.load(catalog, GOLD_DAILY_DELAYS)
    markers.write_marker(gold, signal("2013-01-02", 1))

    markers.write_marker(gold, signal("2013-01-02", 2))

    assert markers.read_marker(gold, "2013-01-02").snapshot_id == 2
    assert markers.read_marker(gold).snapshot_id == 2
