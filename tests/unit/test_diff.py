"""The comparison engine of a blue-green release: fingerprints and keyed diffs of small Arrow tables."""

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from lakeops.release.diff import keyed_diff, merged
from lakeops.release.fingerprint import fingerprint, row_sum

KEY = ("carrier", "flight", "flight_date")
TIMESTAMP = pa.timestamp("us", "UTC")


def flights(n: int = 6) -> pa.Table:
    """A few Silver-like rows: every kind of column, a null in `dest` and in `dep_delay`."""
    return pa.table(
        {
            "carrier": pa.array(["AA", "B6", "UA"] * (n // 3) + ["DL"] * (n % 3)),
            "flight": pa.array(range(100, 100 + n), pa.int64()),
            "flight_date": pa.array([date(2013, 1, 1 + i % 28) for i in range(n)], pa.date32()),
            "dep_delay": pa.array([None if i == 1 else i * 1.5 for i in range(n)], pa.float64()),
            "distance": pa.array([200 + i for i in range(n)], pa.int64()),
            "dest": pa.array([None if i == 2 else f"D{i}" for i in range(n)], pa.string()),
            "time_hour": pa.array([datetime(2013, 1, 1, i % 24, tzinfo=UTC) for i in range(n)], TIMESTAMP),
        }
    )


def with_value(table: pa.Table, column: str, row: int, value: object) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    return table.set_column(table.column_names.index(column), column, pa.array(values, table.schema.field(column).type))


def shuffled(table: pa.Table) -> pa.Table:
    return table.take(list(reversed(range(table.num_rows))))


def test_same_rows_in_another_order_give_the_same_fingerprint_and_an_identical_diff():
    blue = flights()
    green = shuffled(blue)
    assert fingerprint(blue) == fingerprint(green)
    result = keyed_diff(blue, green, KEY)
    assert result.identical and result.changed == 0 and result.sample == ()
    assert [c.match_rate for c in result.columns] == [1.0] * 4


def test_fingerprint_fixes_column_order_by_name_and_reads_sliced_and_chunked_tables():
    blue = flights(12)
    assert fingerprint(blue) == fingerprint(blue.select(sorted(blue.column_names, reverse=True)))
    pieces = pa.concat_tables([blue.slice(0, 5), blue.slice(5)])
    assert fingerprint(pieces) == fingerprint(blue)
    assert fingerprint(blue.slice(3, 4)) == fingerprint(pa.Table.from_pylist(blue.slice(3, 4).to_pylist(), blue.schema))
    assert fingerprint(blue, ["flight", "carrier"]) != fingerprint(blue, ["carrier", "flight"])


@pytest.mark.parametrize(
    ("column", "row", "value"),
    [
        ("dep_delay", 0, 0.5),  # a changed float
        ("dep_delay", 1, 0.0),  # null -> 0.0
        ("dest", 2, ""),  # null -> empty string
        ("dest", 3, "D3 "),  # one more byte
        ("flight_date", 4, date(2013, 2, 1)),
        ("carrier", 5, "AAA"),
    ],
)
def test_fingerprint_sees_one_changed_value_and_tells_null_from_a_value(column: str, row: int, value: object):
    blue = flights()
    assert fingerprint(blue) != fingerprint(with_value(blue, column, row, value))


def test_fingerprint_sees_values_swapped_between_rows_of_one_column():
    blue = flights()
    swapped = with_value(with_value(blue, "distance", 0, 201), "distance", 1, 200)
    assert fingerprint(blue) != fingerprint(swapped)
    assert fingerprint(blue, ["distance"]) == fingerprint(swapped, ["distance"])


def test_one_changed_value_is_one_changed_row_and_the_sample_names_the_column_and_both_values():
    blue = flights()
    result = keyed_diff(blue, shuffled(with_value(blue, "distance", 3, 999)), KEY)
    assert (result.changed, result.only_blue, result.only_green, result.identical) == (1, 0, 0, False)
    assert result.sample == (
        {
            "carrier": "AA",
            "flight": 103,
            "flight_date": "2013-01-04",
            "side": "changed",
            "distance.blue": 203,
            "distance.green": 999,
        },
    )
    distance = next(c for c in result.columns if c.column == "distance")
    assert (distance.compared, distance.matched, distance.max_abs_diff) == (6, 5, 796.0)
    assert result.changed_fraction == pytest.approx(1 / 6)


def test_rows_only_on_one_side_are_counted_and_sampled_by_side():
    blue = flights(9)
    green = pa.concat_tables([blue.slice(0, 7), flights(12).slice(10)])
    result = keyed_diff(blue, green, KEY)
    assert (result.only_blue, result.only_green, result.changed) == (2, 2, 0)
    assert [(row["flight"], row["side"]) for row in result.sample] == [
        (107, "blue only"),
        (110, "green only"),
        (108, "blue only"),
        (111, "green only"),
    ]
    assert result.unmatched_fraction == pytest.approx(4 / 9)
    assert result.changed_fraction == 0.0


@pytest.mark.parametrize(
    ("tolerance", "float_tolerance", "dep_delay_matched", "changed"),
    [
        ({}, 0.0, 5, 2),  # exact
        ({"dep_delay": 0.01}, 0.0, 6, 1),  # within the column's tolerance
        ({"dep_delay": 0.001}, 0.0, 5, 2),  # outside it
        ({}, 0.01, 6, 1),  # within the float tolerance
        ({"dep_delay": 0.001}, 0.01, 5, 2),  # the column's tolerance overrides the float tolerance
        ({}, 1.0, 6, 1),  # which leaves integer columns exact
        ({"distance": 1}, 0.01, 6, 0),  # unless they are named
    ],
)
def test_tolerances(tolerance: dict, float_tolerance: float, dep_delay_matched: int, changed: int):
    blue = flights()
    green = with_value(with_value(blue, "dep_delay", 4, 6.005), "distance", 5, 206)
    result = keyed_diff(blue, green, KEY, tolerance=tolerance, float_tolerance=float_tolerance)
    dep_delay = next(c for c in result.columns if c.column == "dep_delay")
    assert (dep_delay.matched, dep_delay.max_abs_diff) == (dep_delay_matched, pytest.approx(0.005))
    assert dep_delay.tolerance == tolerance.get("dep_delay", float_tolerance)
    assert result.changed == changed


def test_nulls_equal_nulls_and_a_null_against_a_value_is_a_change():
    blue = with_value(flights(), "dep_delay", 0, float("nan"))  # NaN equals NaN too
    assert keyed_diff(blue, shuffled(blue), KEY).identical
    result = keyed_diff(blue, with_value(blue, "dest", 2, "D2"), KEY)
    assert result.changed == 1
    assert (result.sample[0]["dest.blue"], result.sample[0]["dest.green"]) == (None, "D2")


def test_null_keys_match_null_keys():
    blue = with_value(flights(), "carrier", 0, None)
    result = keyed_diff(blue, shuffled(with_value(blue, "distance", 0, 1)), KEY)
    assert (result.only_blue, result.only_green, result.changed) == (0, 0, 1)
    assert result.sample[0]["carrier"] is None
    apart = keyed_diff(blue, flights(), KEY)  # a null is not the value it was (nor the smallest value)
    assert (apart.only_blue, apart.only_green, apart.changed) == (1, 1, 0)


def test_an_extra_column_is_reported_and_not_compared():
    blue = flights()
    green = blue.append_column("new_col", pa.array(range(6)))
    result = keyed_diff(blue, green.drop_columns(["dest"]), KEY)
    assert (result.columns_only_blue, result.columns_only_green) == (("dest",), ("new_col",))
    assert [c.column for c in result.columns] == ["dep_delay", "distance", "time_hour"]
    assert result.changed == 0 and not result.identical
    ignoring = keyed_diff(blue, green.drop_columns(["dest"]), KEY, ignore=["dest", "new_col"])
    assert ignoring.identical


def test_a_column_of_another_type_or_a_nested_type_compares_by_value():
    blue = flights().append_column("legs", pa.array([[1, 2]] * 6))
    green = blue.set_column(blue.column_names.index("distance"), "distance", pa.array(range(200, 206), pa.int32()))
    green = with_value(green, "legs", 4, [1, 3]).append_column("gate", pa.array(["1"] * 6))
    result = keyed_diff(blue.append_column("gate", pa.array([1] * 6)), green, KEY)
    matched = {c.column: c.matched for c in result.columns}
    assert (matched["distance"], matched["legs"], matched["gate"], result.changed) == (6, 5, 0, 6)


def test_duplicate_keys_are_refused_with_their_count_and_an_example():
    blue = flights()
    green = pa.concat_tables([blue, blue.slice(1, 2)])
    with pytest.raises(ValueError, match=r"2 duplicate keys in green \(4 rows\), e.g. \{'carrier': 'B6', 'flight'"):
        keyed_diff(blue, green, KEY)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"key": ("carrier", "tail")}, "key column 'tail' missing in blue"),
        ({"tolerance": {"delay": 0.1}}, "tolerance on 'delay': not a non-key column"),
        ({"tolerance": {"flight": 1}}, "tolerance on 'flight': not a non-key column"),
        ({"tolerance": {"dest": 0.1}}, "needs a numeric column"),
        ({"ignore": ["nope"]}, "ignore on 'nope'"),
    ],
)
def test_bad_arguments_are_refused_by_name(arguments: dict, message: str):
    blue = flights()
    with pytest.raises(ValueError, match=message):
        keyed_diff(blue, blue, **({"key": KEY} | arguments))


def test_empty_tables():
    empty = flights().slice(0, 0)
    assert fingerprint(empty) == fingerprint(flights(3).slice(3)) != fingerprint(flights(3))
    result = keyed_diff(empty, empty, KEY)
    assert result.identical and result.rows_blue == 0 and result.unmatched_fraction == 0.0
    assert keyed_diff(empty, flights(3), KEY).only_green == 3


def test_the_sample_is_capped_at_sample_size_and_shows_every_kind():
    blue = flights(30)
    green = pa.concat_tables(
        [with_value(blue, "distance", 10, 1).slice(4), flights(40).slice(30)]
    )  # 4 only in blue, 10 only in green
    result = keyed_diff(blue, green, KEY, sample_size=5)
    assert (result.changed, result.only_blue, result.only_green) == (1, 4, 10)
    assert [row["side"] for row in result.sample] == ["changed", "blue only", "green only", "blue only", "green only"]
    assert keyed_diff(blue, green, KEY, sample_size=0).sample == ()


def test_to_dict_is_json_serialisable():
    blue = flights()
    green = with_value(with_value(blue, "time_hour", 3, datetime(2014, 1, 1, tzinfo=UTC)), "dep_delay", 0, None)
    summary = json.loads(json.dumps(keyed_diff(blue, green.slice(1), KEY).to_dict()))
    assert summary["changed"] == 1 and summary["only_blue"] == 1
    assert summary["sample"][0]["time_hour.green"] == "2014-01-01T00:00:00+00:00"
    assert summary["sample"][1] == {"carrier": "AA", "flight": 100, "flight_date": "2013-01-01", "side": "blue only"}


def test_the_row_sums_of_a_tables_parts_add_up_to_its_fingerprint():
    blue = flights(12)
    parts = [blue.slice(0, 5), blue.slice(5, 4), blue.slice(9)]
    assert (row_sum(parts[0]) + row_sum(parts[1]) + row_sum(parts[2])).fingerprint() == fingerprint(blue)
    assert (row_sum(parts[0]) + row_sum(parts[1])).fingerprint() != fingerprint(blue)
    with pytest.raises(ValueError, match="unlike schemas"):
        row_sum(blue) + row_sum(blue.drop_columns(["dest"]))


def test_the_diffs_of_a_tables_windows_merge_into_the_diff_of_the_table():
    blue = flights(12)
    green = with_value(with_value(blue, "dep_delay", 0, 99.0), "dest", 7, "XX")
    green = green.slice(0, 10)  # rows 10 and 11 only in blue
    windows = [(blue.slice(0, 4), green.slice(0, 4)), (blue.slice(4, 4), green.slice(4, 4))]
    rest = (blue.slice(8), green.slice(8))
    identical = (blue.slice(8, 2), green.slice(8, 2))  # a window whose fingerprints are equal: no diff
    assert fingerprint(identical[0]) == fingerprint(identical[1])
    parts = [keyed_diff(b, g, KEY, sample_size=3) for b, g in windows]

    whole = keyed_diff(blue, green, KEY)
    combined = merged([*parts, keyed_diff(*rest, KEY)], sample_size=3)
    with_identical = merged([*parts, keyed_diff(blue.slice(10), green.slice(10), KEY)], identical_rows=2)

    for result in (combined, with_identical):
        assert (result.rows_blue, result.rows_green, result.only_blue, result.only_green, result.changed) == (
            whole.rows_blue,
            whole.rows_green,
            whole.only_blue,
            whole.only_green,
            whole.changed,
        )
        assert result.columns == whole.columns
    assert len(combined.sample) == 3 and combined.sample[0] == parts[0].sample[0]
    with pytest.raises(ValueError, match="no diff"):
        merged([])
