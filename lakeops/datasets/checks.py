"""Value checks of a source contract: what each column's values must be before a row enters Bronze.

A column's Arrow type says what its values parse to (integer, number, string); a check says more:
a range, a set of values, a timestamp the layers above can read. Ingest runs every check on every
row, so a row that a later transform could not type is a malformed row of its file, named by
column and line, and never a failure of Silver on what Bronze accepted.
"""

import re
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

MAX_YEAR = 9999  # the last year a date can hold


class Check(Protocol):
    """A rule for one column's non-null values."""

    @property
    def expectation(self) -> str:
        """What a value must be, as the error says it ("between 1 and 12")."""
        ...

    def violations(self, values: pd.Series) -> pd.Series:
        """A boolean mask over `values` (typed, no nulls): True where a value breaks the rule."""
        ...


@dataclass(frozen=True)
class Between:
    """A number between `low` and `high`, both included."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"a range needs low <= high, got {self.low} > {self.high}")

    @property
    def expectation(self) -> str:
        return f"between {_number(self.low)} and {_number(self.high)}"

    def violations(self, values: pd.Series) -> pd.Series:
        return ~values.between(self.low, self.high)


@dataclass(frozen=True)
class OneOf:
    """One of an enumeration of values."""

    values: tuple[str | int, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("an enumeration needs at least one value")

    @property
    def expectation(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)

    def violations(self, values: pd.Series) -> pd.Series:
        return ~values.isin(self.values)


@dataclass(frozen=True)
class Timestamp:
    """An ISO 8601 date and time (a value without an offset is read as UTC), as the layers above parse it."""

    @property
    def expectation(self) -> str:
        return "an ISO 8601 timestamp like 2013-01-01 05:00:00 or 2013-01-01T05:00:00Z"

    def violations(self, values: pd.Series) -> pd.Series:
        parsed = pd.to_datetime(values.astype("str"), utc=True, format="ISO8601", errors="coerce")
        return pd.Series(parsed.isna().to_numpy(), index=values.index)


@dataclass(frozen=True)
class Matches:
    """A string matching a regular expression whole."""

    pattern: str

    def __post_init__(self) -> None:
        re.compile(self.pattern)  # a bad pattern fails when declared, not when a file arrives

    @property
    def expectation(self) -> str:
        return f"a string matching {self.pattern!r}"

    def violations(self, values: pd.Series) -> pd.Series:
        return ~values.astype("str").str.fullmatch(self.pattern).astype(bool)


DATE_PARTS: dict[str, Check] = {
    "year": Between(1, MAX_YEAR),
    "month": Between(1, 12),
    "day": Between(1, 31),
    "hour": Between(0, 23),
}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
