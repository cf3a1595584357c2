"""lakeops.history: every retained snapshot, newest first, with the provenance its commit recorded."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest

from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.datasets.windows import Window
from lakeops.iceberg import schemas
from lakeops.iceberg.tags import LAST_KNOWN_GOOD
from lakeops.versioning import history

from .conftest import DAY_A, DAY_B
from .flights import (
    BRONZE_FLIGHTS,
    GOLD_DAILY_DELAYS,
    QUARANTINE_FLIGHTS,
    SILVER_FLIGHTS,
    build_gold,
    build_silver,
    ingest_bronze,
)
from .versioning_helpers import RUN, corrected, dropper, open_lake, passing, rows_of

VALIDATED = pipeline.Target(validate=passing)


@dataclass(frozen=True)
class Story:
    """Bronze: A, B, corrected A. Silver: A from the first Bronze snapshot (validated), B stale. Gold: A."""

    catalog: object
    batch_a: str
    bronze: tuple[int, int, int]
    silver: tuple[int, int]
    gold: int


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Story:
    home = tmp_path_factory.mktemp("history")
    catalog, drop = open_lake(home / "lake"), dropper(home / "landing")
    batch_a = drop(DAY_A)
    b1 = ingest_bronze(catalog, batch_a, RUN).snapshot_id
    b2 = ingest_bronze(catalog, drop(DAY_B), RUN).snapshot_id
    b3 = ingest_bronze(catalog, drop(DAY_A, corrected(DAY_A)), RUN).snapshot_id
    s1 = build_silver(catalog, Window(DAY_A), b1, RUN, target=VALIDATED).snapshot_id
    s2 = build_silver(catalog, Window(DAY_B), b2, RUN, stale=True, target=VALIDATED).snapshot_id
    g1 = build_gold(catalog, Window(DAY_A), s1, RUN).snapshot_id
    return Story(catalog, batch_a.batch_id, (b1, b2, b3), (s1, s2), g1)


def entries_of(story: Story, ref) -> list[history.HistoryEntry]:
    return history.history(story.catalog.load_table(ref.identifier))


def test_history_is_newest_first_and_chained_by_parent(story):
    b1, b2, b3 = story.bronze
    entries = entries_of(story, BRONZE_FLIGHTS)

    # The correction is an overwrite: one snapshot that drops the day's file and adds the new one.
    assert [e.snapshot_id for e in entries] == [b3, b2, b1]
    assert [e.operation for e in entries] == ["overwrite", "append", "append"]
    assert [e.parent_id for e in entries] == [e.snapshot_id for e in entries[1:]] + [None]
    assert [e.made_by.window for e in entries] == ["2013-01-02", "2013-01-03", "2013-01-02"]
    assert entries[0].committed_at >= entries[1].committed_at >= entries[2].committed_at
    table = story.catalog.load_table(BRONZE_FLIGHTS.identifier)
    for entry in entries:
        at = datetime.fromtimestamp(table.snapshot_by_id(entry.snapshot_id).timestamp_ms / 1000, tz=UTC)
        assert entry.committed_at == at
    assert [e.current for e in entries] == [True, False, False]


def test_input_snapshot_is_the_one_actually_read_not_the_latest(story):
    b1, b2, b3 = story.bronze
    s1, s2 = story.silver
    newest, oldest = entries_of(story, SILVER_FLIGHTS)

    assert (newest.snapshot_id, oldest.snapshot_id) == (s2, s1)
    assert dict(oldest.made_by.inputs) == {"bronze.flights": b1}
    assert dict(newest.made_by.inputs) == {"bronze.flights": b2}
    assert b3 not in {*oldest.made_by.inputs.values(), *newest.made_by.inputs.values()}
    # The rows themselves agree with what the commit says it read.
    silver_a = rows_of(story.catalog, SILVER_FLIGHTS, s1)
    assert set(silver_a["_bronze_snapshot_id"]) == {b1}
    assert set(silver_a["_batch_id"]) == {story.batch_a} == {oldest.made_by.batch_id}
    assert not (silver_a["dep_delay"] == 999.0).any()
    (gold,) = entries_of(story, GOLD_DAILY_DELAYS)
    assert dict(gold.made_by.inputs) == {"silver.flights": s1}


def test_history_carries_stale_transform_version_operation_and_validation(story):
    newest, oldest = entries_of(story, SILVER_FLIGHTS)
    (gold,) = entries_of(story, GOLD_DAILY_DELAYS)

    assert (newest.made_by.stale, oldest.made_by.stale) == (True, False)
    assert {newest.made_by.transform_version, oldest.made_by.transform_version} == {"v1"}
    assert {newest.made_by.operation, oldest.made_by.operation, gold.made_by.operation} == {"build"}
    assert {newest.made_by.branch, oldest.made_by.branch} == {"main"}
    assert (newest.made_by.validated, oldest.made_by.validated, gold.made_by.validated) == (True, True, False)
    assert {(newest.made_by.flow_run_id, newest.made_by.code_version)} == {(RUN.flow_run_id, RUN.code_version)}
    # Bronze commits are validated by parsing, and carry no transform version.
    assert all(e.made_by.validated and e.made_by.transform_version is None for e in entries_of(story, BRONZE_FLIGHTS))


def test_rows_are_the_total_records_of_each_snapshot(story):
    for ref in (BRONZE_FLIGHTS, SILVER_FLIGHTS):
        for entry in entries_of(story, ref):
            assert entry.rows == len(rows_of(story.catalog, ref, entry.snapshot_id)), (ref, entry.snapshot_id)
    s1, s2 = story.silver
    silver_rows = {e.snapshot_id: e.rows for e in entries_of(story, SILVER_FLIGHTS)}
    assert silver_rows == {
        s1: len(landing.day_rows(DAY_A)),
        s2: len(landing.day_rows(DAY_A)) + len(landing.day_rows(DAY_B)),
    }


def test_refs_name_main_and_last_known_good(story):
    newest, oldest = entries_of(story, SILVER_FLIGHTS)
    # The stale build is current but not good: last-known-good stays on the validated one.
    assert newest.refs == ("main",)
    assert oldest.refs == (LAST_KNOWN_GOOD,)
    bronze = entries_of(story, BRONZE_FLIGHTS)
    assert bronze[0].refs == (LAST_KNOWN_GOOD, "main")
    assert [e.refs for e in bronze[1:]] == [(), ()]
    (gold,) = entries_of(story, GOLD_DAILY_DELAYS)
    assert gold.refs == ("main",)  # Gold was built without a validator: never known good


def test_limit_keeps_the_newest(story):
    table = story.catalog.load_table(BRONZE_FLIGHTS.identifier)
    full = history.history(table)

    limited = history.history(table, limit=2)

    assert len(full) == 3
    assert limited == full[:2]
    assert limited[0].snapshot_id == story.bronze[2]


def test_render_prints_one_aligned_line_per_snapshot(story):
    entries = entries_of(story, SILVER_FLIGHTS)
    s1, s2 = story.silver
    b1, b2, _ = story.bronze

    lines = history.render(entries).splitlines()

    assert len(lines) == 1 + len(entries)
    assert lines[0].split()[:4] == ["snapshot", "committed", "(UTC)", "op"]
    newest, oldest = lines[1], lines[2]
    assert newest.split()[0] == str(s2) and oldest.split()[0] == str(s1)
    assert f"bronze.flights@{b2}" in newest and f"bronze.flights@{b1}" in oldest
    assert newest.split()[-1] == "main" and oldest.split()[-1] == LAST_KNOWN_GOOD
    assert " 2013-01-03 build      v1        yes " in newest
    assert " 2013-01-02 build      v1        no  " in oldest
    # Columns line up: the row count ends at the same offset on every line.
    assert newest.index(" 2013-01-03 ") == oldest.index(" 2013-01-02 ")


def test_a_commit_without_provenance_has_none_and_renders_dashes(catalog):
    table = catalog.load_table(QUARANTINE_FLIGHTS.identifier)
    row = pd.DataFrame(
        {
            "batch_id": ["b"],
            "source": ["s.csv"],
            "window": ["2013-01-02"],
            "line_number": [1],
            "raw_line": ["x"],
            "raw_bytes": [b"x\n"],
            "reason": ["r"],
            "error_column": [None],
            "error_row": [None],
            "quarantined_at": [pd.Timestamp("2024-01-01", tz="UTC")],
        }
    )
    table.append(pa.Table.from_pandas(row, schema=schemas.QUARANTINE, preserve_index=False))

    (entry,) = history.history(catalog.load_table(QUARANTINE_FLIGHTS.identifier))
    assert entry.made_by is None
    assert entry.rows == 1
    assert entry.operation == "append"
    line = history.render([entry]).splitlines()[1]
    assert line.split()[4:] == ["1", "-", "-", "-", "no", "-", "-", "-", "main"]
