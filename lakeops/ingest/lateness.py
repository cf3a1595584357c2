"""Late-arriving records: rows of a day file whose event day is an earlier window.

A file for window D may carry flights of an earlier day W (the source found them late). Within the
allowed lateness (D - W days), they extend window W: they enter Bronze beside W's own rows (each
row keeps the `_source` file it came in), W's ready signal is published again and Silver and Gold
rebuild W. Beyond it, those rows are quarantined and the owner alerted; the rest of the file
lands. Rows dated after D are malformed (the file is wrong, not late).

The allowance is the contract's `allowed_lateness_days`, or, when `adaptive_lateness` is on and
enough late rows have been seen, the `lateness_quantile` (p99) of the lags observed in Bronze.
"""

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from lakeops.datasets.windows import Window

MIN_OBSERVATIONS = 20  # late rows needed before the observed distribution replaces the configured allowance


@dataclass(frozen=True)
class LatePolicy:
    """How late a record may be, in days after its window, and whether to learn that from the data."""

    allowed_days: int = 0
    adaptive: bool = False
    quantile: float = 0.99

    def __post_init__(self) -> None:
        if self.allowed_days < 0 or not 0 < self.quantile <= 1:
            raise ValueError(f"allowed lateness must be >= 0 days and the quantile in (0, 1]; got {self}")

    def allowance(self, observed_lags: np.ndarray) -> int:
        """Days of lateness accepted now: configured, or the observed quantile once there are enough lags."""
        if not self.adaptive or len(observed_lags) < MIN_OBSERVATIONS:
            return self.allowed_days
        return max(1, math.ceil(float(np.quantile(observed_lags, self.quantile))))


NO_LATE_RECORDS = LatePolicy()  # every record dated before its file's window is quarantined


@dataclass(frozen=True)
class Arrival:
    """One day file's typed rows, split by how late each is."""

    window: Window
    own: pd.DataFrame
    late: dict[Window, pd.DataFrame]
    too_late: pd.DataFrame
    allowed_days: int

    @property
    def accepted(self) -> pd.DataFrame:
        """Rows that go to Bronze: the file's own window and the late rows within the allowance."""
        return pd.concat([self.own, *self.late.values()])

    @property
    def too_late_lag_days(self) -> int:
        return int(lags(self.too_late, self.window).max()) if len(self.too_late) else 0

    def counts(self) -> dict[str, int]:
        return {"own": len(self.own), "late": sum(map(len, self.late.values())), "too_late": len(self.too_late)}


def event_days(rows: pd.DataFrame) -> pd.Series:
    """Each row's event day, from its year, month and day columns."""
    return pd.to_datetime(rows[["year", "month", "day"]].astype("int64")).dt.date


def lags(rows: pd.DataFrame, window: Window) -> pd.Series:
    """Days between each row's event day and the window its file was delivered for."""
    return pd.Series([(window.day - d).days for d in event_days(rows)], index=rows.index, dtype="int64")


def split(typed: pd.DataFrame, window: Window, allowed_days: int) -> Arrival:
    """Split a file's rows into its own window's, late within `allowed_days`, and too late.

    Rows dated after the window are not split here: ingest refuses them as malformed.
    """
    lag = lags(typed, window) if len(typed) else pd.Series(dtype="int64")
    own, late_rows, too_late = typed[lag == 0], typed[(lag > 0) & (lag <= allowed_days)], typed[lag > allowed_days]
    days = event_days(late_rows) if len(late_rows) else pd.Series(dtype="object")
    late = {Window(day): late_rows[days == day] for day in sorted(set(days))}
    return Arrival(window, own, late, too_late, allowed_days)


def observed_lags(bronze: pd.DataFrame) -> np.ndarray:
    """Lags in days of the late rows already in Bronze (`_source` names the file, hence its window)."""
    if bronze.empty:
        return np.array([], dtype="int64")
    delivered = pd.to_datetime(bronze["_source"].str.slice(0, 10), errors="coerce").dt.date
    # A file not named by its day (NaT) tells no lag.
    pairs = zip(delivered, event_days(bronze), strict=True)
    observed = pd.Series([(d - e).days if isinstance(d, date) and not pd.isna(d) else 0 for d, e in pairs])
    return observed[observed > 0].to_numpy()
