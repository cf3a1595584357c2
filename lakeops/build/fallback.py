"""Stale fallback: carry an earlier window's rows forward into a window whose data is late."""

from datetime import date, timedelta

import pandas as pd
import pyarrow as pa

from lakeops.datasets.windows import Window, WindowColumn


def carry_forward(
    rows: pd.DataFrame, schema: pa.Schema, parts: tuple[str, ...], source: Window, window: Window
) -> pd.DataFrame:
    """The rows of `source`, re-dated to `window`: every date and timestamp column of `schema`, and the
    integer date `parts` (year, month, day) where the rows carry them, shift by the gap.

    The natural key stays unique within the window, so the commit replaces `window` cleanly and the
    real data, when it lands, replaces these rows in turn. Lineage columns keep the source batch.
    """
    shift = source.shifted(window)
    moved = rows
    if parts and all(p in rows.columns for p in parts):
        moved = WindowColumn(parts=parts, grain="day" if len(parts) == 3 else "hour").shift(moved, shift)
    for field in schema:
        if field.name not in moved.columns:
            continue
        if pa.types.is_date(field.type):
            moved = moved.assign(**{field.name: [_shift_date(d, shift) for d in moved[field.name]]})
        elif pa.types.is_timestamp(field.type):
            moved = moved.assign(**{field.name: moved[field.name] + shift})
    return moved


def _shift_date(value: date | None, shift: timedelta) -> date | None:
    return None if value is None or pd.isna(value) else value + shift
