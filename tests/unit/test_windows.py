"""lakeops.windows: one window is one calendar day."""

from datetime import date, datetime

import pytest

from lakeops.datasets.windows import Window, WindowColumn

DAY = date(2013, 1, 2)


@pytest.mark.parametrize(
    "value",
    [DAY, "2013-01-02", "2013-01-02T05:00:00+00:00", Window(DAY)],
    ids=["date", "iso string", "iso timestamp string", "window"],
)
def test_parse_accepts_dates_strings_and_windows(value):
    window = Window.parse(value)

    assert window == Window(DAY)
    assert window.key == "2013-01-02"
    assert str(window) == "2013-01-02"


def test_parse_of_a_window_returns_it():
    window = Window(DAY)

    assert Window.parse(window) is window


def test_parse_of_a_datetime_keeps_only_its_day():
    """A datetime is a date; its window must be the day, or keys and Silver filters carry the time."""
    window = Window.parse(datetime(2013, 1, 2, 5, 30))

    assert window.key == "2013-01-02"
    assert window == Window(DAY)


@pytest.mark.parametrize(
    "value",
    ["", "yesterday", "2013-13-01", "2013-02-30", "02/01/2013", None, 3.5],
)
def test_parse_rejects_garbage_naming_the_value(value):
    with pytest.raises(ValueError) as caught:
        Window.parse(value)

    assert repr(value) in str(caught.value)


def test_windows_order_by_day():
    days = [Window(date(2013, 1, d)) for d in (3, 1, 2)]

    assert [w.key for w in sorted(days)] == ["2013-01-01", "2013-01-02", "2013-01-03"]


@pytest.mark.parametrize("value", ["1995-03", "1995-03-01", date(1995, 3, 17), datetime(1995, 3, 31, 23)])
def test_a_month_window_parses_from_its_month_or_any_day_in_it(value):
    window = Window.parse(value, "month")

    assert (window.key, window.grain) == ("1995-03", "month")
    assert (window.start.isoformat(), window.end.isoformat()) == (
        "1995-03-01T00:00:00+00:00",
        "1995-04-01T00:00:00+00:00",
    )


def test_december_ends_on_the_first_of_the_next_year():
    assert Window.parse("1998-12", "month").end.date() == date(1999, 1, 1)


@pytest.mark.parametrize("value", ["1995-13", "1995-3", "1995-03-02", "March 1995"])
def test_a_month_window_refuses_what_is_not_a_month(value):
    with pytest.raises(ValueError, match="ISO month"):
        Window.parse(value, "month")


def test_a_month_window_starts_on_the_first():
    with pytest.raises(ValueError, match="first of the month"):
        Window(date(1995, 3, 2), month=True)


def test_a_month_column_places_rows_and_filters_by_date_range():
    import pandas as pd
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

    column = WindowColumn("l_shipdate", grain="month")
    rows = pd.DataFrame({"l_shipdate": [date(1995, 2, 28), date(1995, 3, 1), date(1995, 3, 31)]})

    assert [w.key for w in column.windows(rows)] == ["1995-02", "1995-03", "1995-03"]
    selected = column.filter(Window.parse("1995-03", "month"))
    assert isinstance(selected, And)
    assert isinstance(selected.left, GreaterThanOrEqual) and isinstance(selected.right, LessThan)
    assert (str(selected.left.literal.value), str(selected.right.literal.value)) == ("1995-03-01", "1995-04-01")


def test_month_windows_are_placed_by_a_date_column_not_parts():
    with pytest.raises(ValueError, match="not by date parts"):
        WindowColumn(parts=("year", "month", "day"), grain="month")
