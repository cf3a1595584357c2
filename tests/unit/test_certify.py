"""pipeline.certify: the audit after publishing moves last-known-good only on a pass of a fresh commit."""

from datetime import date

import pytest

from lakeops.build import pipeline
from lakeops.build.validation import ValidationReport
from lakeops.datasets.windows import Window
from lakeops.errors import ValidationFailed
from lakeops.iceberg import lake, tags

from .flights import SILVER, SILVER_FLIGHTS, build_silver, ingest_bronze

RUN = pipeline.RunInfo("run-1", "git:test")
DAY = date(2013, 1, 2)


def passing(layer, frame) -> ValidationReport:
    return ValidationReport(f"fake.{layer.table}", len(frame), 1, ())


def failing(layer, frame) -> ValidationReport:
    return ValidationReport(f"fake.{layer.table}", len(frame), 2, ("expect_something: 3 rows",))


def built(catalog, drop_day, stale: bool = False):
    bronze = ingest_bronze(catalog, drop_day(DAY), RUN)
    return build_silver(catalog, Window(DAY), bronze.snapshot_id, RUN, stale=stale)


def test_a_pass_moves_last_known_good_to_the_audited_snapshot(catalog, drop_day):
    signal = built(catalog, drop_day)
    assert tags.last_known_good(lake.load(catalog, SILVER_FLIGHTS)) is None  # building alone earns nothing

    report = pipeline.certify(catalog, SILVER, signal, passing)

    assert report.success and report.rows == signal.row_count
    assert tags.last_known_good(lake.load(catalog, SILVER_FLIGHTS)).snapshot_id == signal.snapshot_id


def test_a_failure_raises_names_the_kept_tag_and_moves_nothing(catalog, drop_day):
    first = built(catalog, drop_day)
    pipeline.certify(catalog, SILVER, first, passing)
    second = built(catalog, drop_day)  # same batch: Silver is rebuilt, a new snapshot
    assert second.snapshot_id != first.snapshot_id

    with pytest.raises(ValidationFailed, match=f"last-known-good stays at {first.snapshot_id}") as failure:
        pipeline.certify(catalog, SILVER, second, failing)

    assert failure.value.failures == ("expect_something: 3 rows",)
    silver = lake.load(catalog, SILVER_FLIGHTS)
    assert tags.last_known_good(silver).snapshot_id == first.snapshot_id
    assert silver.current_snapshot().snapshot_id == second.snapshot_id  # audited after commit: it stays


def test_a_stale_commit_that_passes_does_not_move_the_tag(catalog, drop_day):
    signal = built(catalog, drop_day, stale=True)

    assert pipeline.certify(catalog, SILVER, signal, passing).success

    assert tags.last_known_good(lake.load(catalog, SILVER_FLIGHTS)) is None


def test_the_audit_reads_the_committed_window_at_the_signalled_snapshot(catalog, drop_day):
    signal = built(catalog, drop_day)
    seen = []

    def spy(layer, frame) -> ValidationReport:
        seen.append((layer, len(frame), set(frame["flight_date"])))
        return passing(layer, frame)

    pipeline.certify(catalog, SILVER, signal, spy)

    assert seen == [(SILVER, signal.row_count, {DAY})]
