"""Processing windows (a day, or an hour of a day) and the columns that place a row in one."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from typing import Literal

import pandas as pd
from pyiceberg.expressions import AlwaysFalse, And, BooleanExpression, Or

from lakeops.datasets.filters import equal_to, greater_than_or_equal, is_in, less_than

Grain = Literal["day", "hour"]


@dataclass(frozen=True, order=True)
class Window:
    """A daily window, or one hour of a day; `key` (2013-01-01 or 2013-01-01T05) names it in events and markers."""

    day: date
    hour: int | None = None

    def __post_init__(self) -> None:
        if self.hour is not None and not 0 <= self.hour < 24:
            raise ValueError(f"an hour window's hour is 0..23, got {self.hour}")

    @classmethod
    def parse(cls, value: "str | date | Window", grain: Grain = "day") -> "Window":
        """Accept a Window, a date(time) or an ISO string, as a window of `grain`; raise ValueError otherwise."""
        if isinstance(value, Window):
            return value
        if isinstance(value, datetime):
            return cls(value.date(), value.hour if grain == "hour" else None)
        if isinstance(value, date):
            if grain == "hour":
                raise ValueError(f"an hour window needs an hour, got the date {value}")
            return cls(value)
        text = str(value)
        try:
            if grain == "hour":
                moment = datetime.fromisoformat(text if len(text) > 13 else f"{text}:00")
                return cls(moment.date(), moment.hour)
            return cls(date.fromisoformat(text[:10]))
        except ValueError as exc:
            example = "2013-01-01T05" if grain == "hour" else "2013-01-01"
            raise ValueError(f"window must be an ISO {grain} like {example}, got {value!r}") from exc

    @property
    def grain(self) -> Grain:
        return "day" if self.hour is None else "hour"

    @property
    def key(self) -> str:
        return self.day.isoformat() if self.hour is None else f"{self.day.isoformat()}T{self.hour:02d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(self.hour or 0), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + (timedelta(days=1) if self.hour is None else timedelta(hours=1))

    def shifted(self, to: "Window") -> timedelta:
        """How far `to` lies after this window."""
        return to.start - self.start

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class WindowColumn:
    """The column(s) placing a row in its window: a date or timestamp `column`, or integer date `parts`.

    `parts` are year, month, day (and hour for an hour grain), as a source often delivers them.
    """

    column: str | None = None
    parts: tuple[str, ...] = ()
    grain: Grain = "day"

    def __post_init__(self) -> None:
        if (self.column is None) == (not self.parts):
            raise ValueError("a window column is either one column or the year, month, day[, hour] parts")
        if self.parts and len(self.parts) != (3 if self.grain == "day" else 4):
            raise ValueError(f"an {self.grain} window from parts needs {'3' if self.grain == 'day' else '4'} columns")

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.column else self.parts

    def filter(self, window: Window) -> BooleanExpression:
        """The Iceberg row filter selecting this window's rows."""
        if self.parts:
            values = [window.day.year, window.day.month, window.day.day]
            if window.hour is not None:
                if len(self.parts) < 4:
                    raise ValueError(f"day parts {self.parts} cannot select the hour window {window}")
                values.append(window.hour)
            # A day window on hour parts selects the whole day: its year, month and day.
            terms = [equal_to(c, v) for c, v in zip(self.parts, values, strict=False)]
            result = terms[-1]
            for term in reversed(terms[:-1]):
                result = And(term, result)
            return result
        assert self.column is not None
        if self.grain == "day" and window.hour is None:
            return equal_to(self.column, window.key)
        return And(
            greater_than_or_equal(self.column, window.start.isoformat()), less_than(self.column, window.end.isoformat())
        )

    def filter_any(self, windows: Iterable[Window]) -> BooleanExpression:
        """The row filter selecting the rows of any of `windows`."""
        chosen = list(windows)
        if not chosen:
            return AlwaysFalse()
        if self.column and self.grain == "day":
            return is_in(self.column, [w.key for w in chosen])
        return reduce(Or, (self.filter(w) for w in chosen))

    def moments(self, rows: pd.DataFrame) -> pd.Series:
        """Each row's instant (its window's start at this grain), as UTC timestamps."""
        if self.parts:
            names = ("year", "month", "day", "hour")[: len(self.parts)]
            frame = rows[list(self.parts)].astype("int64").set_axis(names, axis=1)
            return pd.to_datetime(frame, utc=True)
        moments = pd.to_datetime(rows[self.column], utc=True, format="ISO8601")
        return moments.dt.floor("h" if self.grain == "hour" else "D")

    def windows(self, rows: pd.DataFrame) -> list[Window]:
        """Each row's window, in row order."""
        return [
            Window(m.date(), m.hour if self.grain == "hour" else None) for m in self.moments(rows).dt.to_pydatetime()
        ]

    def shift(self, rows: pd.DataFrame, by: timedelta) -> pd.DataFrame:
        """The rows re-dated by `by`: the window column(s) moved, so that they fall in a later window."""
        moved = self.moments(rows) + by
        if self.parts:
            values = (moved.dt.year, moved.dt.month, moved.dt.day, moved.dt.hour)
            return rows.assign(**{c: v.astype("int64") for c, v in zip(self.parts, values, strict=False)})
        assert self.column is not None  # no parts: __post_init__ made sure of a column
        column = rows[self.column]
        if pd.api.types.is_datetime64_any_dtype(column):
            return rows.assign(**{self.column: column + by})
        return rows.assign(**{self.column: [d + by for d in column]})
