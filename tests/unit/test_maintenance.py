"""lakeops.maintenance: expiry keeps what time travel and replay need, the sweep deletes only orphans,
compaction keeps every row."""

import time
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeops.datasets.windows import Window
from lakeops.errors import SnapshotNotFound
from lakeops.iceberg import lake, schemas
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness import markers
from lakeops.versioning import maintenance, replay, timetravel
from lakeops.versioning.timetravel import AsOf

from . import lakes
from .conftest import DAY_A, DAY_B
from .flights import (
    BRONZE_FLIGHTS,
    FLIGHTS,
    GOLD,
    GOLD_DAILY_DELAYS,
    MEDALLION,
    QUARANTINE_FLIGHTS,
    REGISTRY,
    SILVER_FLIGHTS,
    build_gold,
    build_silver,
    ingest_bronze,
)
from .versioning_helpers import (
    DAY_C,
    RUN,
    canonical,
    corrected,
    dropper,
    open_lake,
    rows_of,
    rows_on,
    snapshot_ids,
)

MADE_BY = Provenance("test", "maintenance-run", "", "")
AGGRESSIVE = maintenance.RetentionPolicy(keep_last=1, max_age=timedelta(0), orphan_grace=timedelta(0))


def write_parquet(table, uri: str, rows: pa.Table) -> None:
    """A file the table's metadata knows nothing of, written through the table's own FileIO."""
    sink = pa.BufferOutputStream()
    pq.write_table(rows, sink)
    with table.io.new_output(uri).create(overwrite=True) as out:
        out.write(sink.getvalue().to_pybytes())


def assert_every_referenced_file_exists(table) -> None:
    missing = [p for p in maintenance.referenced_files(table) if not table.io.new_input(p).exists()]
    assert not missing, missing


def test_a_policy_that_would_drop_the_current_snapshot_or_compact_nothing_is_refused():
    with pytest.raises(ValueError, match="keep_last must be at least 1"):
        maintenance.RetentionPolicy(keep_last=0)
    with pytest.raises(ValueError, match="compact_min_files must be at least 2"):
        maintenance.RetentionPolicy(compact_min_files=1)


def test_expiry_keeps_every_tagged_snapshot_readable(catalog, drop_day):
    ids = [ingest_bronze(catalog, drop_day(d), RUN).snapshot_id for d in (DAY_A, DAY_B, DAY_C)]
    ids.append(ingest_bronze(catalog, drop_day(DAY_A, corrected(DAY_A)), RUN).snapshot_id)
    table = catalog.load_table(BRONZE_FLIGHTS.identifier)
    table.manage_snapshots().create_tag(ids[0], "month-close").create_tag(ids[1], "audit-2013-01-03").commit()
    tagged = {
        "month-close": (ids[0], rows_of(catalog, BRONZE_FLIGHTS, ids[0])),
        "audit-2013-01-03": (ids[1], rows_of(catalog, BRONZE_FLIGHTS, ids[1])),
    }
    before = snapshot_ids(catalog, BRONZE_FLIGHTS)
    assert len(before) == 4  # three ingests, then the correction: one overwrite

    (report,) = maintenance.maintain(catalog, REGISTRY, (BRONZE_FLIGHTS,), AGGRESSIVE, MADE_BY, maintenance.utcnow())

    assert sorted(snapshot_ids(catalog, BRONZE_FLIGHTS)) == sorted([ids[0], ids[1], ids[3]])
    assert (report.snapshots_before, report.expired) == (4, 1)
    table = catalog.load_table(BRONZE_FLIGHTS.identifier)
    for name, (snapshot_id, rows) in tagged.items():
        snapshot, now = timetravel.read_as_of(table, AsOf(ref=name))
        assert snapshot.snapshot_id == snapshot_id, name
        pd.testing.assert_frame_equal(now, rows)
    with pytest.raises(SnapshotNotFound, match=rf"bronze\.flights has no snapshot {ids[2]}"):
        timetravel.read_as_of(table, AsOf(snapshot_id=ids[2]))
    assert_every_referenced_file_exists(table)


@dataclass
class Maintained:
    catalog: object
    bronze: dict
    replay_v2: dict
    reports: list


@pytest.fixture(scope="module")
def maintained(tmp_path_factory) -> Maintained:
    """Silver A and B built from the second Bronze snapshot; Bronze then corrected and extended; a v2
    replay on its branch; then one aggressive maintenance of every table."""
    home = tmp_path_factory.mktemp("maintenance")
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    b1 = ingest_bronze(catalog, drop(DAY_A), RUN).snapshot_id
    b2 = ingest_bronze(catalog, drop(DAY_B), RUN).snapshot_id
    for day in (DAY_A, DAY_B):
        silver = build_silver(catalog, Window(day), b2, RUN)
        build_gold(catalog, Window(day), silver.snapshot_id, RUN)
    b3 = ingest_bronze(catalog, drop(DAY_A, corrected(DAY_A)), RUN).snapshot_id
    b4 = ingest_bronze(catalog, drop(DAY_C), RUN).snapshot_id
    result = replay.run(catalog, REGISTRY, replay.plan(catalog, REGISTRY, FLIGHTS.name, "v2"), RUN)
    assert result.replayed == (Window(DAY_A), Window(DAY_B), Window(DAY_C))
    replay_v2 = {
        ref: {
            "snapshots": snapshot_ids(catalog, ref),
            "completed": replay.completed(catalog.load_table(ref.identifier), "replay-v2", "v2"),
            "rows": rows_on(catalog, ref, "replay-v2"),
        }
        for ref in (SILVER_FLIGHTS, GOLD_DAILY_DELAYS)
    }
    reports = maintenance.maintain(
        catalog, REGISTRY, (*MEDALLION, QUARANTINE_FLIGHTS), AGGRESSIVE, MADE_BY, maintenance.utcnow()
    )
    return Maintained(catalog, {"b1": b1, "b2": b2, "b3": b3, "b4": b4}, replay_v2, reports)


def test_bronze_snapshots_recorded_by_silver_rows_survive(maintained):
    left = set(snapshot_ids(maintained.catalog, BRONZE_FLIGHTS))
    b = maintained.bronze

    assert b["b2"] in left  # recorded by Silver A and B: replay re-reads it
    assert b["b4"] in left  # main and last-known-good
    assert not {b["b1"], b["b3"]} & left  # neither recorded nor referenced
    assert maintained.reports[0].expired >= 2


def test_replay_from_recorded_bronze_still_works_after_maintenance(maintained):
    catalog = maintained.catalog

    plan = replay.plan(catalog, REGISTRY, FLIGHTS.name, "v1", start=DAY_A, end=DAY_B, branch="after-maintenance")
    result = replay.run(catalog, REGISTRY, plan, RUN)

    assert {s.inputs["flights.bronze"] for s in plan.sources} == {maintained.bronze["b2"]}
    assert result.replayed == (Window(DAY_A), Window(DAY_B))
    for ref in (SILVER_FLIGHTS, GOLD_DAILY_DELAYS):
        pd.testing.assert_frame_equal(
            canonical(rows_on(catalog, ref, "after-maintenance"), ref), canonical(rows_of(catalog, ref), ref)
        )


def test_replay_branch_history_survives_maintenance(maintained):
    catalog = maintained.catalog
    for ref, before in maintained.replay_v2.items():
        table = catalog.load_table(ref.identifier)
        assert replay.completed(table, "replay-v2", "v2") == before["completed"], ref
        kept = set(snapshot_ids(catalog, ref))
        assert {sid for sid, _ in before["completed"].values()} <= kept
        assert set(before["snapshots"]) - kept, f"{ref}: expiry should have removed main's old snapshots"
        pd.testing.assert_frame_equal(
            canonical(rows_on(catalog, ref, "replay-v2"), ref), canonical(before["rows"], ref)
        )
    snapshots = {ref: snapshot_ids(catalog, ref) for ref in maintained.replay_v2}

    again = replay.run(catalog, REGISTRY, replay.plan(catalog, REGISTRY, FLIGHTS.name, "v2"), RUN)

    assert again.replayed == () and len(again.skipped) == 3
    assert {ref: snapshot_ids(catalog, ref) for ref in maintained.replay_v2} == snapshots


def test_after_maintenance_every_referenced_file_exists_and_every_ref_reads(maintained):
    for ref in (*MEDALLION, QUARANTINE_FLIGHTS):
        table = maintained.catalog.load_table(ref.identifier)
        assert_every_referenced_file_exists(table)
        for name, r in table.metadata.refs.items():
            assert table.scan(snapshot_id=r.snapshot_id).to_arrow().num_rows > 0, (ref, name)
    empty = maintained.reports[-1]
    assert (empty.table, empty.snapshots_before, empty.expired, empty.orphans_removed) == (
        "quarantine.flights",
        0,
        0,
        0,
    )


def test_the_sweep_deletes_orphans_and_expired_files_but_not_fresh_files_or_markers(catalog, drop_day):
    original = ingest_bronze(catalog, drop_day(DAY_A), RUN)
    signal = ingest_bronze(catalog, drop_day(DAY_A, corrected(DAY_A)), RUN)
    table = catalog.load_table(BRONZE_FLIGHTS.identifier)
    expired_snapshot = table.snapshot_by_id(original.snapshot_id)
    expired_files = {lakes.named(expired_snapshot.manifest_list)}
    expired_files |= {lakes.named(m.manifest_path) for m in expired_snapshot.manifests(table.io)}
    expired_files |= {
        lakes.named(e.data_file.file_path)
        for m in expired_snapshot.manifests(table.io)
        for e in m.fetch_manifest_entry(table.io)
    }
    marker_files = {lakes.named(markers.write_marker(table, signal)), lakes.named(f"{table.location()}/_READY")}
    data_dir = f"{table.location()}/data"
    stray_old = f"{data_dir}/year=2013/month=1/day=2/00000-0-left-by-a-crashed-writer.parquet"
    write_parquet(table, stray_old, pa.table({"x": [1, 2, 3]}))
    # Everything so far is older than the grace; what is written after `cutoff` is not (S3 keeps whole seconds).
    time.sleep(1.1)
    cutoff = maintenance.utcnow()
    time.sleep(1.1)
    stray_fresh = f"{data_dir}/00000-0-commit-in-flight.parquet"
    write_parquet(table, stray_fresh, pa.table({"x": [4]}))
    policy = maintenance.RetentionPolicy(keep_last=1, max_age=timedelta(0), orphan_grace=timedelta(hours=1))
    on_disk = lakes.files_under(table)
    rows_before = rows_of(catalog, BRONZE_FLIGHTS)

    (report,) = maintenance.maintain(catalog, REGISTRY, (BRONZE_FLIGHTS,), policy, MADE_BY, cutoff + timedelta(hours=1))

    table = catalog.load_table(BRONZE_FLIGHTS.identifier)
    gone = on_disk - lakes.files_under(table)
    assert report.expired == 1  # the original append
    assert lakes.named(stray_old) in gone
    assert expired_files <= gone and len(expired_files) == 3
    assert table.io.new_input(stray_fresh).exists()
    assert all(m in lakes.files_under(table) for m in marker_files)
    assert report.orphans_removed == len(gone)
    assert_every_referenced_file_exists(table)
    kept = {lakes.named(p) for p in maintenance.referenced_files(table)} | marker_files | {lakes.named(stray_fresh)}
    assert kept >= lakes.files_under(table)
    pd.testing.assert_frame_equal(rows_of(catalog, BRONZE_FLIGHTS), rows_before)


def gold_batch(day: date, origin: str, n: int) -> pa.Table:
    frame = pd.DataFrame(
        {
            "flight_date": [day] * n,
            "origin": [f"{origin}{i}" for i in range(n)],
            "flights": [10 + i for i in range(n)],
            "cancelled": [i % 2 for i in range(n)],
            "mean_dep_delay": [1.5 * i for i in range(n)],
            "mean_arr_delay": [None if i == 0 else -0.5 * i for i in range(n)],
            "on_time_arrivals": [5] * n,
            "_batch_id": [f"batch-{origin}"] * n,
        }
    )
    return lake.to_arrow(frame, GOLD.schema)


def data_files(catalog, ref) -> list[tuple[str, tuple]]:
    files = catalog.load_table(ref.identifier).inspect.files().to_pylist()
    return [(f["file_path"], tuple(sorted((f["partition"] or {}).items()))) for f in files if f["content"] == 0]


def test_compaction_rewrites_small_files_into_one_per_partition_and_keeps_every_row(catalog):
    gold = catalog.load_table(GOLD_DAILY_DELAYS.identifier)
    for i in range(4):
        for day in (DAY_A, DAY_B):
            lake.append_rows(gold, gold_batch(day, f"X{i}", 2), Provenance("test", "run", day.isoformat(), f"b{i}"))
    lake.append_rows(gold, gold_batch(DAY_C, "Y", 3), Provenance("test", "run", DAY_C.isoformat(), "c"))
    quarantine = catalog.load_table(QUARANTINE_FLIGHTS.identifier)
    for i in range(3):
        frame = pd.DataFrame(
            {
                "batch_id": [f"q{i}"] * 2,
                "source": ["f.csv"] * 2,
                "window": ["2013-01-02"] * 2,
                "line_number": [1, 2],
                "raw_line": ["a", "b"],
                "raw_bytes": [b"a\n", b"b\n"],
                "reason": ["bad"] * 2,
                "error_column": [None] * 2,
                "error_row": [None] * 2,
                "quarantined_at": [pd.Timestamp("2024-01-01", tz="UTC")] * 2,
            }
        )
        lake.append_rows(
            quarantine, pa.Table.from_pandas(frame, schema=schemas.QUARANTINE, preserve_index=False), MADE_BY
        )
    before = {
        ref: (rows_of(catalog, ref), catalog.load_table(ref.identifier).current_snapshot().snapshot_id)
        for ref in (GOLD_DAILY_DELAYS, QUARANTINE_FLIGHTS)
    }
    lonely = [path for path, part in data_files(catalog, GOLD_DAILY_DELAYS) if dict(part)["flight_date"] == DAY_C]
    policy = maintenance.RetentionPolicy(compact_min_files=3)

    gold_report, quarantine_report = maintenance.maintain(
        catalog, REGISTRY, (GOLD_DAILY_DELAYS, QUARANTINE_FLIGHTS), policy, MADE_BY, maintenance.utcnow()
    )

    assert (gold_report.partitions_compacted, gold_report.files_before, gold_report.files_after) == (2, 9, 3)
    assert (quarantine_report.partitions_compacted, quarantine_report.files_before, quarantine_report.files_after) == (
        1,
        3,
        1,
    )
    partitions = [part for _, part in data_files(catalog, GOLD_DAILY_DELAYS)]
    assert sorted(partitions) == sorted(set(partitions)) and len(partitions) == 3
    assert [
        path for path, part in data_files(catalog, GOLD_DAILY_DELAYS) if dict(part)["flight_date"] == DAY_C
    ] == lonely
    assert gold_report.expired == 0  # everything is younger than a week
    for ref, (rows, pre_compaction) in before.items():
        sort = list(rows.columns[:2])
        now = rows_of(catalog, ref).sort_values(sort).reset_index(drop=True)
        pd.testing.assert_frame_equal(now, rows.sort_values(sort).reset_index(drop=True))
        then = timetravel.read_as_of(catalog.load_table(ref.identifier), AsOf(snapshot_id=pre_compaction))[1]
        pd.testing.assert_frame_equal(
            then.sort_values(sort).reset_index(drop=True), rows.sort_values(sort).reset_index(drop=True)
        )
        made = lake.provenance_of(catalog.load_table(ref.identifier).current_snapshot())
        assert (made.operation, made.flow_run_id) == ("compaction", "maintenance-run")


def test_maintenance_works_on_a_lake_whose_path_has_a_space(tmp_path):
    """A project folder like "~/My Projects" is ordinary; the warehouse URI of such a home is percent-encoded."""
    catalog = open_lake(tmp_path / "my lake")
    drop = dropper(tmp_path / "landing")
    ingest_bronze(catalog, drop(DAY_A), RUN)
    ingest_bronze(catalog, drop(DAY_B), RUN)
    rows_before = rows_of(catalog, BRONZE_FLIGHTS)

    maintenance.maintain(catalog, REGISTRY, (BRONZE_FLIGHTS,), AGGRESSIVE, MADE_BY, maintenance.utcnow())

    table = catalog.load_table(BRONZE_FLIGHTS.identifier)
    assert_every_referenced_file_exists(table)
    pd.testing.assert_frame_equal(rows_of(catalog, BRONZE_FLIGHTS), rows_before)


def test_compaction_is_one_snapshot_and_no_snapshot_misses_a_partitions_rows(catalog):
    gold = catalog.load_table(GOLD_DAILY_DELAYS.identifier)
    for i in range(3):
        for day in (DAY_A, DAY_B):
            lake.append_rows(gold, gold_batch(day, f"X{i}", 2), Provenance("test", "run", day.isoformat(), f"b{i}"))
    rows_before = len(gold.scan().to_arrow())
    snapshots_before = len(gold.snapshots())

    assert maintenance.compact(gold, 3, MADE_BY) == 2

    gold = catalog.load_table(GOLD_DAILY_DELAYS.identifier)
    assert len(gold.snapshots()) == snapshots_before + 1
    assert gold.current_snapshot().summary.operation.value == "overwrite"
    assert len(gold.scan().to_arrow()) == rows_before
    assert len(gold.inspect.files()) == 2  # one file per partition
