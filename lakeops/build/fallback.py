"""Stale fallback: carry an earlier window's Silver rows forward into a window whose data is late."""

import pandas as pd

from lakeops.datasets.windows import Window


def carry_forward(silver: pd.DataFrame, source: Window, window: Window) -> pd.DataFrame:
    """The rows of `source`, re-dated to `window` (date columns and scheduled hour shift by the gap).

    The natural key stays unique within the window, so the commit replaces `window` cleanly and the
    real data, when it lands, replaces these rows in turn. Lineage columns keep the source batch.
    """
    shift = pd.Timedelta(days=(window.day - source.day).days)
    return silver.assign(
        flight_date=window.day,
        year=window.day.year,
        month=window.day.month,
        day=window.day.day,
        time_hour=silver["time_hour"] + shift,
    )
