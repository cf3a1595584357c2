"""Processing windows: one window is one calendar day of data."""

from dataclasses import dataclass
from datetime import date, datetime

from pyiceberg.expressions import And, BooleanExpression, EqualTo


@dataclass(frozen=True, order=True)
class Window:
    """A daily window; `key` is its ISO date, used in events, markers and provenance."""

    day: date

    @classmethod
    def parse(cls, value: "str | date | Window") -> "Window":
        """Accept a Window, a date or an ISO date string; raise ValueError otherwise."""
        if isinstance(value, Window):
            return value
        if isinstance(value, datetime):
            return cls(value.date())
        if isinstance(value, date):
            return cls(value)
        try:
            return cls(date.fromisoformat(str(value)[:10]))
        except ValueError as exc:
            raise ValueError(f"window must be an ISO date like 2013-01-01, got {value!r}") from exc

    @property
    def key(self) -> str:
        return self.day.isoformat()

    def source_filter(self) -> BooleanExpression:
        """Rows of this window in a table keyed by year, month and day columns (Bronze)."""
        return And(
            EqualTo("year", self.day.year),
            And(EqualTo("month", self.day.month), EqualTo("day", self.day.day)),
        )

    def date_filter(self, column: str = "flight_date") -> BooleanExpression:
        """Rows of this window in a table with a date column (Silver, Gold)."""
        return EqualTo(column, self.key)

    def __str__(self) -> str:
        return self.key
