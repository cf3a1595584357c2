"""lakeops.readiness.alerts: what the owner is told, and a reprocess command that runs as printed."""

import json
import re
import shlex
from datetime import date

import pandas as pd
import pytest

from declarations.flights import landing
from lakeops.datasets.declaration import LatePolicy
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.healing.failures import FailureClass
from lakeops.readiness import alerts, contracts

from .flights import FLIGHTS, REGISTRY, land, parse, quarantine
from .versioning_helpers import DAY_C, RUN

D = DAY_C  # 2013-01-04
CONTRACT = contracts.of(REGISTRY, FLIGHTS)
PRODUCER = "ingest/bronze.flights"  # the ingest deployment of the dataset's Bronze table
OWNER = "flights-data-team"
assert (CONTRACT.dataset, CONTRACT.producer, CONTRACT.owner) == ("bronze.flights", PRODUCER, OWNER)
COMMAND = re.compile(r"prefect deployment run \S+ -p .*$", re.MULTILINE)


def reprocess(text: str) -> tuple[str, dict]:
    """The deployment and the params of the reprocess command in `text`, read as a POSIX shell reads it."""
    found = COMMAND.findall(text)
    assert len(found) == 1, text
    words = shlex.split(found[0])
    assert words[:3] == ["prefect", "deployment", "run"] and words[4] == "-p" and len(words) == 6, words
    name, _, value = words[5].partition("=")
    assert name == "params"
    return words[3], json.loads(value)


def with_rows(own: date, *others: pd.DataFrame) -> str:
    """The day's real file with other real rows inserted after its 100th row."""
    rows = landing.day_rows(own)
    return pd.concat([rows.iloc[:100], *others, rows.iloc[100:]], ignore_index=True).to_csv(index=False)


# --- a batch quarantined whole ----------------------------------------------------------------


def test_malformed_names_dataset_window_file_cell_the_line_counts_and_the_command(catalog, drop_day):
    batch = drop_day(D, with_rows(D, landing.day_rows(date(2013, 1, 5)).iloc[:1]))  # line 102 is dated after D
    with pytest.raises(MalformedBatch) as caught:
        land(catalog, batch, RUN)
    kept = quarantine(catalog, batch, caught.value, RUN)

    alert = alerts.malformed(FLIGHTS, batch, caught.value, kept)

    assert alert.subject.startswith(
        "[lakeops] bronze.flights 2013-01-04: 2013-01-04.csv rejected (column 'day', row 102)"
    )
    assert "Dataset bronze.flights, window 2013-01-04: 2013-01-04.csv rejected" in alert.body
    assert "dates the row 2013-01-05, after window 2013-01-04" in alert.body
    assert f"  line 102: {batch.line(102)}" in alert.body and batch.line(102).startswith("2013,1,5,")
    assert kept == len(batch.lines)
    assert f"Counts: lines in file {len(batch.lines)}, quarantined {kept}, committed 0." in alert.body
    assert f"Owner: {OWNER}." in alert.body
    assert reprocess(alert.body) == (PRODUCER, {"dataset": "flights", "window": "2013-01-04"})


def test_malformed_without_a_line_says_whole_file_and_shows_no_sample(drop_day):
    batch = drop_day(D, landing.day_rows(D).iloc[:0].to_csv(index=False))
    with pytest.raises(MalformedBatch) as caught:
        parse(batch)

    alert = alerts.malformed(FLIGHTS, batch, caught.value, 1)

    assert "2013-01-04.csv rejected (whole file): header but no data rows" in alert.subject
    assert "Sample:\n  (none)\n" in alert.body and "lines in file 1, quarantined 1, committed 0" in alert.body


def test_malformed_for_a_short_row_names_the_row_and_shows_it(drop_day):
    lines = landing.day_rows(D).to_csv(index=False).splitlines()
    lines[9] = ",".join(lines[9].split(",")[:-2])
    batch = drop_day(D, "\n".join(lines) + "\n")
    with pytest.raises(MalformedBatch) as caught:
        parse(batch)

    alert = alerts.malformed(FLIGHTS, batch, caught.value, len(lines))

    assert "rejected (row 10): 17 fields where the header has 19" in alert.subject
    assert f"  line 10: {lines[9]}" in alert.body


# --- records too late -------------------------------------------------------------------------


def test_too_late_names_the_allowance_the_counts_and_a_sample_of_the_lines(catalog, drop_day):
    late, too_late = landing.day_rows(date(2013, 1, 2)).iloc[:5], landing.day_rows(date(2013, 1, 1)).iloc[:4]
    batch = drop_day(D, with_rows(D, late, too_late))
    landed = land(catalog, batch, RUN, LatePolicy(2))
    sample = [f"line {n}: {batch.line(n)}" for n in landed.too_late_lines]  # as the ingest flow builds it

    alert = alerts.too_late(FLIGHTS, batch, sample, landed.late_rows, landed.allowed_days)

    assert landed.too_late_lines == (107, 108, 109, 110)
    rule = "4 record(s) in 2013-01-04.csv are more than 2 day(s) late"
    assert alert.subject == f"[lakeops] bronze.flights 2013-01-04: {rule}" and rule in alert.body
    assert "Counts: late records accepted 5, too late, quarantined 4." in alert.body
    assert all(f"  {line}" in alert.body for line in sample[:3]) and sample[3] not in alert.body
    assert "raise the source's allowed lateness in the declaration of flights, run `lakeops setup`" in alert.body
    assert reprocess(alert.body) == (PRODUCER, {"dataset": "flights", "window": "2013-01-04"})


# --- a failed run -----------------------------------------------------------------------------

RETRIED = {
    FailureClass.DATA_LOGIC: "never retried",
    FailureClass.UNKNOWN: "not retried",
    FailureClass.TRANSIENT: "after its retries",
    FailureClass.RESOURCE: "ran out of resources",  # the healer's, never sent by the failure hook
}


@pytest.mark.parametrize("failure", list(FailureClass), ids=lambda f: f.value)
def test_failed_run_says_what_failed_whether_it_was_retried_and_how_to_reprocess(failure):
    params = {"window": "2013-01-04", "lakehouse": "default"}

    alert = alerts.failed_run("ingest-bronze-flights", "brave-fox", PRODUCER, params, failure, "boom", OWNER)

    assert alert.subject.startswith("[lakeops] ingest-bronze-flights 2013-01-04: ")
    assert RETRIED[failure] in alert.subject and RETRIED[failure] in alert.body
    assert f"Flow run brave-fox of {PRODUCER}" in alert.body and "Error: boom" in alert.body
    assert f"Parameters: {json.dumps(params)}" in alert.body and f"Owner: {OWNER}." in alert.body
    assert reprocess(alert.body) == (PRODUCER, params)


@pytest.mark.parametrize(
    ("params", "window"),
    [({"start": "2013-01-01", "end": "2013-01-03"}, "2013-01-01"), ({"dataset": "flights"}, "-")],
    ids=["a range", "no window"],
)
def test_failed_run_of_a_flow_without_a_window_names_its_start_or_a_dash(params, window):
    alert = alerts.failed_run(
        "replay-flights", "calm-owl", "replay-flights/lakeops", params, FailureClass.DATA_LOGIC, "x" * 5000, OWNER
    )

    assert alert.subject.startswith(f"[lakeops] replay-flights {window}: ")
    assert f"Error: {'x' * 2000}\n" in alert.body
    assert reprocess(alert.body) == ("replay-flights/lakeops", params)


def test_failed_run_params_with_a_date_are_written_as_iso_dates():
    alert = alerts.failed_run(
        "ingest", "brave-fox", PRODUCER, {"dataset": "flights", "window": D}, FailureClass.TRANSIENT, "timed out", OWNER
    )

    assert reprocess(alert.body) == (PRODUCER, {"dataset": "flights", "window": "2013-01-04"})


def test_the_reprocess_command_survives_a_quote_in_a_parameter():
    """release-rollback takes a free-text `reason`; an apostrophe in it ends the single-quoted argument."""
    params = {"dataset": "flights", "reason": "Gold's delays doubled", "lakehouse": "default"}

    command = alerts.reprocess_command("release-rollback/lakeops", params)

    assert reprocess(command) == ("release-rollback/lakeops", params)


# --- the message itself -----------------------------------------------------------------------


def test_a_message_shows_at_most_three_sample_lines_and_a_one_line_subject():
    rule = "x" * 200 + "\nsecond line"

    alert = alerts.message("bronze.flights", "2013-01-04", rule, {"rows": 7}, ["a", "b", "c", "d"], "cmd", OWNER)

    assert alert.subject == f"[lakeops] bronze.flights 2013-01-04: {'x' * 120}"
    assert "Sample:\n  a\n  b\n  c\nOwner" in alert.body and "Counts: rows 7." in alert.body


# --- schema drift -----------------------------------------------------------------------------


def test_the_drift_alert_of_a_renamed_column_shows_the_diff_and_the_command(drop_day):
    text = landing.day_rows(D).to_csv(index=False).replace(",dep_delay,", ",departure_delay,", 1)
    batch = drop_day(D, text)
    with pytest.raises(SchemaDrifted) as caught:
        parse(batch)

    subject, body = alerts.schema_drift(FLIGHTS, batch, caught.value.drift)

    assert subject == "[lakeops] bronze.flights 2013-01-04: schema drift"
    assert "> column 'dep_delay' -> 'departure_delay' (float64): rename suspected; 'dep_delay' is missing" in body
    assert caught.value.drift.describe() in body and "1 change(s)" in body
    assert f"quarantined whole: {len(batch.lines)} raw lines" in body and "Nothing reached Bronze or Silver" in body
    assert f"Owner: {OWNER}. Producer: {PRODUCER}." in body
    assert reprocess(body) == (PRODUCER, {"dataset": "flights", "window": "2013-01-04"})
