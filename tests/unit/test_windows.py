"""lakeops.windows: one window is one calendar day."""

from datetime import date, datetime

import pytest

from lakeops.datasets.windows import Window

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
