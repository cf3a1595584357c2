"""Late-arriving records: rows of a day file whose event day is an earlier window.

A file for window D may carry records of an earlier window W (the source found them late). Within the
allowed lateness (D - W days), they extend window W: they enter Bronze beside W's own rows (each
row keeps the `_source` file it came in), W's ready signal is published again and Silver and Gold
rebuild W. Beyond it, those rows are quarantined and the owner alerted; the rest of the file
lands. Rows dated after D are malformed (the file is wrong, not late).

The allowance is the source's declared `LatePolicy.allowed_days`, or, when it is `adaptive` and
enough late rows have been seen, its `quantile` (p99) of the lags observed in Bronze.
"""

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from lakeops.datasets.declaration import LatePolicy
from lakeops.datasets.windows import Window, WindowColumn

MIN_OBSERVATIONS = 20  # late rows needed before the observed distribution replaces the configured allowance


def allowance(policy: LatePolicy, observed_lags: np.ndarray) -> int:
    """Days of lateness accepted now: configured, or the observed quantile once there are enough lags."""
    if not policy.adaptive or len(observed_lags) < MIN_OBSERVATIONS:
        return policy.allowed_days
    return max(1, math.ceil(float(np.quantile(observed_lags, policy.quantile))))


NO_LATE_RECORDS = LatePolicy()  # every record dated before its file's window is quarantined


@dataclass(frozen=True)
class Arrival:
    """One day file's typed rows, split by how late each is."""

    window: Window
    own: pd.DataFrame
    late: dict[Window, pd.DataFrame]
    too_late: pd.DataFrame
    allowed_days: int
    event_time: WindowColumn

    @property
    def accepted(self) -> pd.DataFrame:
        """Rows that go to Bronze: the file's own window and the late rows within the allowance."""
        return pd.concat([self.own, *self.late.values()])

    @property
    def too_late_lag_days(self) -> int:
        return math.ceil(lags(self.too_late, self.window, self.event_time).max()) if len(self.too_late) else 0

    def counts(self) -> dict[str, int]:
        return {"own": len(self.own), "late": sum(map(len, self.late.values())), "too_late": len(self.too_late)}


def lags(rows: pd.DataFrame, window: Window, event_time: WindowColumn) -> pd.Series:
    """Days (a fraction for an hour window) between each row's window and the window its file was delivered for."""
    starts = event_time.moments(rows)
    delivered = pd.Timestamp(window.start)
    return pd.Series((delivered - starts) / pd.Timedelta(days=1), index=rows.index, dtype="float64")


def split(typed: pd.DataFrame, window: Window, allowed_days: int, event_time: WindowColumn) -> Arrival:
    """Split a file's rows into its own window's, late within `allowed_days`, and too late.

    Rows dated after the window are not split here: ingest refuses them as malformed.
    """
    lag = lags(typed, window, event_time) if len(typed) else pd.Series(dtype="int64")
    own, late_rows, too_late = typed[lag == 0], typed[(lag > 0) & (lag <= allowed_days)], typed[lag > allowed_days]
    windows = pd.Series(event_time.windows(late_rows), index=late_rows.index, dtype="object")
    late = {w: late_rows[windows == w] for w in sorted(set(windows))}
    return Arrival(window, own, late, too_late, allowed_days, event_time)


def lag_columns(event_time: WindowColumn) -> tuple[str, ...]:
    """What `observed_lags` reads of Bronze."""
    return (*event_time.columns, "_batch_id")


def observed_lags(bronze: pd.DataFrame, event_time: WindowColumn) -> np.ndarray:
    """Lags in days of the late rows already in Bronze (a batch id starts with its file's window key)."""
    if bronze.empty:
        return np.array([], dtype="int64")
    delivered = pd.to_datetime(bronze["_batch_id"].str.slice(0, 10), errors="coerce").dt.date
    # A batch not named by its day (NaT) tells no lag.
    pairs = zip(delivered, event_time.moments(bronze).dt.date, strict=True)
    observed = pd.Series([(d - e).days if isinstance(d, date) and not pd.isna(d) else 0 for d, e in pairs])
    lags: np.ndarray = observed[observed > 0].to_numpy()
    return lags
