"""Processing windows (a calendar month, a day, or an hour of a day) and the columns that place a row in one."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from typing import Literal

import pandas as pd
from pyiceberg.expressions import AlwaysFalse, And, BooleanExpression, Or

from lakeops.datasets.filters import equal_to, greater_than_or_equal, is_in, less_than

Grain = Literal["month", "day", "hour"]


@dataclass(frozen=True, order=True)
class Window:
    """A daily window, one hour of a day, or a calendar month (`day` its first day); `key` (2013-01-01,
    2013-01-01T05 or 1995-03) names it in events, markers and source files."""

    day: date
    hour: int | None = None
    month: bool = False

    def __post_init__(self) -> None:
        if self.hour is not None and not 0 <= self.hour < 24:
            raise ValueError(f"an hour window's hour is 0..23, got {self.hour}")
        if self.month and (self.hour is not None or self.day.day != 1):
            raise ValueError(f"a month window starts on the first of the month, got {self.day} {self.hour}")

    @classmethod
    def of_month(cls, moment: date) -> "Window":
        """The month window holding `moment`."""
        return cls(moment.replace(day=1), month=True)

    @classmethod
    def parse(cls, value: "str | date | Window", grain: Grain = "day") -> "Window":
        """Accept a Window, a date(time) or an ISO string, as a window of `grain`; raise ValueError otherwise."""
        if isinstance(value, Window):
            return value
        if grain == "month":
            return cls._parse_month(value)
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

    @classmethod
    def _parse_month(cls, value: "str | date") -> "Window":
        if isinstance(value, date):
            return cls.of_month(value)
        text = str(value)
        if not re.fullmatch(r"\d{4}-\d{2}(-01)?", text):
            raise ValueError(f"a month window is an ISO month like 1995-03, got {value!r}")
        try:
            return cls.of_month(date.fromisoformat(f"{text[:7]}-01"))
        except ValueError as exc:
            raise ValueError(f"a month window is an ISO month like 1995-03, got {value!r}") from exc

    @property
    def grain(self) -> Grain:
        return "month" if self.month else "day" if self.hour is None else "hour"

    @property
    def key(self) -> str:
        if self.month:
            return self.day.isoformat()[:7]
        return self.day.isoformat() if self.hour is None else f"{self.day.isoformat()}T{self.hour:02d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(self.hour or 0), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        if self.month:
            following = self.day.replace(year=self.day.year + 1, month=1) if self.day.month == 12 else None
            following = following or self.day.replace(month=self.day.month + 1)
            return datetime.combine(following, time(0), tzinfo=UTC)
        return self.start + (timedelta(days=1) if self.hour is None else timedelta(hours=1))

    def shifted(self, to: "Window") -> timedelta:
        """How far `to` lies after this window."""
        return to.start - self.start

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class WindowColumn:
    """The column(s) placing a row in its window: a date or timestamp `column`, or integer date `parts`.

    `parts` are year, month, day (and hour for an hour grain), as a source often delivers them. A month
    window is placed by a date column only.
    """

    column: str | None = None
    parts: tuple[str, ...] = ()
    grain: Grain = "day"

    def __post_init__(self) -> None:
        if (self.column is None) == (not self.parts):
            raise ValueError("a window column is either one column or the year, month, day[, hour] parts")
        if self.parts and self.grain == "month":
            raise ValueError("a month window is placed by one date or timestamp column, not by date parts")
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
        if self.grain == "month" or window.month:
            # Dates compare with ISO dates, timestamps with ISO instants (pyiceberg binds the literal to the column).
            return And(
                greater_than_or_equal(self.column, window.start.date().isoformat()),
                less_than(self.column, window.end.date().isoformat()),
            )
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
        if self.grain == "month":
            return moments.dt.tz_localize(None).dt.to_period("M").dt.to_timestamp().dt.tz_localize(UTC)
        return moments.dt.floor("h" if self.grain == "hour" else "D")

    def windows(self, rows: pd.DataFrame) -> list[Window]:
        """Each row's window, in row order."""
        moments = self.moments(rows).dt.to_pydatetime()
        if self.grain == "month":
            return [Window.of_month(m.date()) for m in moments]
        return [Window(m.date(), m.hour if self.grain == "hour" else None) for m in moments]

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
