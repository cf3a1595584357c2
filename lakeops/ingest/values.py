"""Typing a batch's values against its source contract: each value's type, each column's checks, each row's window.

Every fault is a MalformedBatch naming the file, the column and the line of the first row that
breaks the contract; a row that passes can be typed by every layer above (Silver never fails on
what Bronze accepted).
"""

import numpy as np
import pandas as pd
import pyarrow as pa

from lakeops.datasets.declaration import Source
from lakeops.datasets.windows import Window
from lakeops.errors import MalformedBatch

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT = 2**53  # an integer written as a float ("12.0", "1e3") is exact below this


def typed(frame: pd.DataFrame, source: Source, where: str) -> pd.DataFrame:
    """The contract's columns typed (Int64, Float64, str), checked, and dated inside or before the window."""
    result = pd.DataFrame({name: _typed(frame[name], typ, name, where) for name, typ in source.columns.items()})
    for column, checks in source.value_checks.items():
        for check in checks:
            values = result[column].dropna()
            bad = check.violations(values)
            if bad.any():
                line = int(bad.idxmax())
                value = frame.loc[line, column]
                raise MalformedBatch(where, f"value {value!r} is not {check.expectation}", column, line)
    return result


def _typed(raw: pd.Series, typ: pa.DataType, name: str, where: str) -> pd.Series:
    if pa.types.is_string(typ):
        return raw.astype("str").where(raw.notna(), None)
    if pa.types.is_integer(typ):
        return _integers(raw, name, where)
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = raw.notna() & ~np.isfinite(numbers)  # not a number at all, or inf / nan
    if bad.any():
        line = int(bad.idxmax())
        raise MalformedBatch(where, f"value {raw.loc[line]!r} is not a finite number", name, line)
    return numbers.astype("Float64")


def _integers(raw: pd.Series, name: str, where: str) -> pd.Series:
    """Exact 64-bit integers: no detour through float64, which rounds above 2**53 and overflows silently."""
    values: list[int | None] = []
    for line, value in raw.items():
        if pd.isna(value):
            values.append(None)
            continue
        number = _integer(value)
        if number is None:
            raise MalformedBatch(where, f"value {value!r} is not an integer", name, int(line))
        if not INT64_MIN <= number <= INT64_MAX:
            reason = f"value {value!r} is out of the 64-bit integer range ({INT64_MIN} to {INT64_MAX})"
            raise MalformedBatch(where, reason, name, int(line))
        values.append(number)
    return pd.Series(pd.array(values, dtype="Int64"), index=raw.index)


def _integer(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() and abs(number) < _EXACT_FLOAT else None


def check_window(typed: pd.DataFrame, source: Source, window: Window, where: str) -> None:
    """Every row is dated in the file's window or before it (a late record); a later date is malformed."""
    columns = source.event_time.columns
    for column in columns:
        if typed[column].isna().any():
            line = int(typed[column].isna().idxmax())
            raise MalformedBatch(where, "no value: the row's window is unknown", column, line)
    moments = _moments(typed, source, where)
    after = moments >= pd.Timestamp(window.end)
    if after.any():
        line = int(after.idxmax())
        column = _differing_part(typed.loc[line], source, window) or columns[0]
        value = typed.loc[line, column]
        value = value.item() if hasattr(value, "item") else value
        dated = Window.parse(moments.loc[line].to_pydatetime(), source.event_time.grain)
        reason = f"value {value!r} dates the row {dated}, after window {window}"
        raise MalformedBatch(where, reason, column, line)


def _moments(typed: pd.DataFrame, source: Source, where: str) -> pd.Series:
    """Each row's instant from its event-time columns; an impossible date (Feb 30) names its day."""
    event_time = source.event_time
    try:
        return event_time.moments(typed)
    except (ValueError, OverflowError):
        pass
    for line in typed.index:  # find the first row that does not date
        try:
            event_time.moments(typed.loc[[line]])
        except (ValueError, OverflowError):
            values = tuple(typed.loc[line, c] for c in event_time.columns)
            reason = f"{values} is not a date ({', '.join(event_time.columns)})"
            # Each part is in its range (checked before): the day is past the end of its month.
            column = event_time.parts[2] if event_time.parts else event_time.columns[0]
            raise MalformedBatch(where, reason, column, int(line)) from None
    raise AssertionError("unreachable: every row dated one by one")


def _differing_part(row: pd.Series, source: Source, window: Window) -> str | None:
    """The first date part of a row that differs from its file's window (the column to name)."""
    parts = source.event_time.parts
    expected = (window.day.year, window.day.month, window.day.day, window.hour)
    return next((c for c, w in zip(parts, expected, strict=False) if row[c] != w), None)
