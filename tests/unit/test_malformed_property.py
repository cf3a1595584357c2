"""Property: a malformed day file of any kind is a lakeops error naming the file (and the column and line
where the kind has them), Bronze is unchanged, and quarantine holds the file's lines byte for byte;
a file that is accepted builds Silver and Gold without failing."""

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog import Catalog

from declarations.flights import landing
from lakeops.build import pipeline
from lakeops.build.pipeline import RunInfo
from lakeops.datasets.registry import Registry
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch
from lakeops.iceberg import lake
from lakeops.ingest import batches

from .conftest import DAY_A, day_text
from .flights import BRONZE_FLIGHTS, FLIGHTS, SOURCE

MAX_CHARS = 200
SMALL = dataclasses.replace(SOURCE, max_value_chars=MAX_CHARS)
DATASET = dataclasses.replace(FLIGHTS, source=SMALL)
REGISTRY = Registry((DATASET,))
RUN = RunInfo("property-run", "test")
WINDOW = Window(DAY_A)
LINES = day_text(DAY_A).split("\n")[:13]  # the header and 12 real rows
HEADER = LINES[0].split(",")
ROWS = [line.split(",") for line in LINES[1:]]
INTS = [c for c, t in SMALL.columns.items() if str(t) == "int64"]
FLOATS = [c for c, t in SMALL.columns.items() if str(t) == "double"]
STRINGS = ["carrier", "tailnum", "dest"]
KEY = list(SMALL.natural_key)
RANGES = {"hour": (0, 23), "minute": (0, 59), "dep_time": (0, 2400), "month": (1, 12)}
SETTINGS = settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str
    content: bytes
    column: str | None = None  # where the fault must be named (None: any, or not applicable)
    line: int | None = None


def csv_of(header: list[str], rows: list[list[str]]) -> bytes:
    return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode()


def edited(row: int, column: str, value: str) -> bytes:
    rows = [list(r) for r in ROWS]
    rows[row][HEADER.index(column)] = value
    return csv_of(HEADER, rows)


def cell_case(kind: str, columns: list[str], values: st.SearchStrategy[str], named: str | None = "column") -> Callable:
    @st.composite
    def case(draw: st.DrawFn) -> Case:
        row, column = draw(st.integers(0, len(ROWS) - 1)), draw(st.sampled_from(columns))
        value = draw(values)
        return Case(kind, edited(row, column, value), column if named == "column" else named, row + 2)

    return case()


words = st.from_regex(r"[a-z]{1,8}", fullmatch=True)
huge = st.integers(2**63, 10**30).map(str) | st.integers(-(10**30), -(2**63) - 1).map(str)


@st.composite
def out_of_range(draw: st.DrawFn) -> Case:
    column = draw(st.sampled_from(sorted(RANGES)))
    low, high = RANGES[column]
    value = draw(st.integers(high + 1, high + 10_000) | st.integers(low - 10_000, low - 1))
    row = draw(st.integers(0, len(ROWS) - 1))
    return Case("out of range", edited(row, column, str(value)), column, row + 2)


@st.composite
def type_change(draw: st.DrawFn) -> Case:
    column = draw(st.sampled_from([c for c in INTS if c not in ("year", "month", "day")]))
    rows = [list(r) for r in ROWS]
    for r in rows:
        r[HEADER.index(column)] = draw(words)
    return Case("type change", csv_of(HEADER, rows), column, 2)


@st.composite
def header_fault(draw: st.DrawFn) -> Case:
    i, j = draw(st.lists(st.integers(0, len(HEADER) - 1), min_size=2, max_size=2, unique=True).map(sorted))
    kind = draw(st.sampled_from(["duplicate header", "renamed column", "removed column"]))
    if kind == "duplicate header":
        header = [HEADER[i] if k == j else name for k, name in enumerate(HEADER)]
        return Case(kind, csv_of(header, ROWS), HEADER[i], 1)
    if kind == "renamed column":
        header = [f"zz_{draw(words)}" if k == i else name for k, name in enumerate(HEADER)]
        return Case(kind, csv_of(header, ROWS), HEADER[i], 1)
    keep = [k for k in range(len(HEADER)) if k != i]
    return Case(kind, csv_of([HEADER[k] for k in keep], [[r[k] for k in keep] for r in ROWS]), HEADER[i], 1)


@st.composite
def structure_fault(draw: st.DrawFn) -> Case:
    row = draw(st.integers(0, len(ROWS) - 1))
    rows = [list(r) for r in ROWS]
    kind = draw(st.sampled_from(["field count", "unclosed quote", "text after a closing quote", "carriage return"]))
    cell = draw(st.sampled_from(STRINGS))
    at = HEADER.index(cell)
    if kind == "field count":
        rows[row] = rows[row][:-1] if draw(st.booleans()) else [*rows[row], "extra"]
    elif kind == "unclosed quote":
        rows[row][at] = '"' + rows[row][at]
    elif kind == "text after a closing quote":
        rows[row][at] = f'"{rows[row][at]}"x'  # a quote inside an unquoted value is a plain character
    else:
        rows[row][at] = rows[row][at][:1] + "\r" + rows[row][at][1:]
    return Case(kind, csv_of(HEADER, rows), None, row + 2)


@st.composite
def byte_fault(draw: st.DrawFn) -> Case:
    row, column = draw(st.integers(0, len(ROWS) - 1)), draw(st.sampled_from(STRINGS))
    kind = draw(st.sampled_from(["not utf-8", "over-long value"]))
    if kind == "over-long value":
        return Case(kind, edited(row, column, "X" * draw(st.integers(MAX_CHARS + 1, 3 * MAX_CHARS))), column, row + 2)
    bad = draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\x80", b"\xed\xa0\x80"]))
    marker = "\x00MARK\x00"
    content = edited(row, column, "N" + marker).replace(marker.encode(), bad)
    return Case(kind, content, column, row + 2)


@st.composite
def whole_file(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["empty", "header only", "random bytes", "cut off", "no own rows"]))
    if kind == "empty":
        return Case(kind, b"" if draw(st.booleans()) else b"\n\n")
    if kind == "header only":
        return Case(kind, (LINES[0] + "\n").encode())
    if kind == "random bytes":
        return Case(kind, draw(st.binary(min_size=1, max_size=3000)))
    if kind == "cut off":
        text = csv_of(HEADER, ROWS).decode().rstrip("\n")
        return Case(kind, text[: text.rindex("T") + 2].encode(), "time_hour", len(ROWS) + 1)
    rows = [list(r) for r in ROWS]  # every row a day late beyond the allowance or dated before
    for r in rows:
        r[HEADER.index("day")] = "1"
        r[HEADER.index("month")] = "1"
    return Case(kind, csv_of(HEADER, rows))


@st.composite
def date_fault(draw: st.DrawFn) -> Case:
    row = draw(st.integers(0, len(ROWS) - 1))
    kind = draw(st.sampled_from(["after the window", "impossible date", "null key"]))
    if kind == "after the window":
        return Case(kind, edited(row, "day", str(draw(st.integers(3, 31)))), "day", row + 2)
    if kind == "null key":
        column = draw(st.sampled_from(KEY))
        return Case(kind, edited(row, column, draw(st.sampled_from(["", "NA"]))), column, row + 2)
    rows = [list(r) for r in ROWS]
    month, day = draw(st.sampled_from([(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31)]))
    rows[row][HEADER.index("month")], rows[row][HEADER.index("day")] = str(month), str(day)
    return Case(kind, csv_of(HEADER, rows), "day", row + 2)


MALFORMED = st.sampled_from(
    [
        cell_case("not an integer", INTS, words),
        cell_case("beyond int64", INTS, huge),
        cell_case("not a finite number", FLOATS, st.sampled_from(["inf", "-inf", "nan", "1.2.3", "e"]) | words),
        cell_case("not a timestamp", ["time_hour"], words | st.sampled_from(["2013-01-02T1", "2013-02-30 05:00:00"])),
        type_change(),
        out_of_range(),
        header_fault(),
        structure_fault(),
        byte_fault(),
        whole_file(),
        date_fault(),
    ]
).flatmap(lambda kinds: kinds)  # each family as likely as any other


@pytest.fixture(scope="module")
def lake_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, Path]:
    root = tmp_path_factory.mktemp("property")
    catalog = lake.open_catalog("property", {"type": "sql", "uri": f"sqlite:///{root}/c.db", "warehouse": str(root)})
    lake.ensure_tables(catalog, REGISTRY)
    return catalog, root / "landing"


def dropped(landing_dir: Path, content: bytes) -> batches.RawBatch:
    path = landing.day_file(landing_dir, DAY_A)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return batches.read_landed(landing_dir, SMALL, WINDOW)


@SETTINGS
@given(case=MALFORMED)
def test_a_malformed_file_is_named_quarantined_byte_for_byte_and_bronze_unchanged(lake_catalog, case: Case):
    catalog, landing_dir = lake_catalog
    batch = dropped(landing_dir, case.content)
    bronze_before = lake.load(catalog, BRONZE_FLIGHTS).current_snapshot()
    with pytest.raises(MalformedBatch) as raised:
        pipeline.land(catalog, DATASET, batch, RUN)
    event(case.kind)
    error = raised.value
    assert error.source == batch.source, case.kind
    if case.line is not None:
        assert error.row == case.line, (case.kind, str(error))
    if case.column is not None:
        assert error.column == case.column, (case.kind, str(error))
    assert lake.load(catalog, BRONZE_FLIGHTS).current_snapshot() == bronze_before

    # What `pipeline.quarantine` commits (the commit itself is tested in test_hostile_input): one row a line.
    rows = batches.quarantine_rows(batch, error, datetime.now(UTC))
    lines = case.content.split(b"\n")
    expected = (len(lines) - (1 if case.content.endswith(b"\n") else 0)) if case.content else 1
    assert len(rows) == expected, case.kind
    assert b"".join(b or b"" for b in rows.raw_bytes) == case.content
    if case.content:
        assert rows.line_number.tolist() == list(range(1, expected + 1))
    if error.row:
        assert rows.raw_bytes.iloc[error.row - 1].rstrip(b"\n") == lines[error.row - 1]


cell_values = {
    **{c: st.sampled_from(["", "NA", "0", "12.0", "1e3", "-7", "2400"]) for c in ("dep_time", "arr_time")},
    "dep_delay": st.sampled_from(["", "NA", "0", "-3.5", "1e2", "12"]),
    "tailnum": st.text(st.characters(codec="utf-8", exclude_characters=',"\r\n'), max_size=12),
    "time_hour": st.sampled_from(
        ["2013-01-02 05:00:00", "2013-01-02T05:00:00Z", "2013-01-02T05:00:00+05:00", "2013-01-02", "2013-01-02T05"]
    ),
    "origin": st.sampled_from(["EWR", " jfk ", "Lga"]),
}


@settings(max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(
    edits=st.lists(st.tuples(st.integers(0, len(ROWS) - 1), st.sampled_from(sorted(cell_values))), max_size=8),
    data=st.data(),
)
def test_what_bronze_accepts_silver_and_gold_build(lake_catalog, edits, data):
    catalog, landing_dir = lake_catalog
    rows = [list(r) for r in ROWS]
    for row, column in edits:
        rows[row][HEADER.index(column)] = data.draw(cell_values[column])
    batch = dropped(landing_dir, csv_of(HEADER, rows))
    try:
        landed = pipeline.land(catalog, DATASET, batch, RUN)
    except MalformedBatch:
        return  # named and refused: the first property covers it
    silver = pipeline.build(
        catalog, REGISTRY, "flights.silver", WINDOW, {"flights.bronze": landed.own.snapshot_id}, RUN
    )
    gold = pipeline.build(catalog, REGISTRY, "flights.gold", WINDOW, {"flights.silver": silver.snapshot_id}, RUN)
    assert silver.row_count >= 1 and gold.row_count >= 1
