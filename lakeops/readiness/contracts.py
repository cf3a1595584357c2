"""Readiness contracts: when a dataset's signal is due, how long to wait, and what a fallback may use.

Contracts are versioned config (`contracts.yaml` at the project root); `lakeops setup` turns each
into a proactive automation and a ReadinessContract block that flow runs read.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import yaml

from lakeops.datasets.windows import Window
from lakeops.ingest.lateness import LatePolicy


@dataclass(frozen=True)
class ReadinessContract:
    """One dataset's promise: its signal for window W lands by `expected_at` on W + 1 day (UTC)."""

    dataset: str
    producer: str  # deployment that publishes the signal, e.g. ingest-bronze-flights/lakeops
    consumer: str  # deployment that runs on it (and on the stale fallback)
    expected_at: time
    buffer: timedelta
    max_fallback_age: timedelta
    give_up_after: timedelta
    owner: str
    alert_block: str
    cadence: str = "daily"
    accept_additive_drift: bool = False  # a batch with only new columns may enter Bronze (never Silver)
    allowed_lateness_days: int = 0  # records up to this many days older than their file's window extend it
    adaptive_lateness: bool = False  # learn the allowance from observed lags (their `lateness_quantile`)
    lateness_quantile: float = 0.99

    @property
    def late_policy(self) -> LatePolicy:
        return LatePolicy(self.allowed_lateness_days, self.adaptive_lateness, self.lateness_quantile)

    def __post_init__(self) -> None:
        if self.cadence != "daily":
            raise ValueError(f"contract {self.dataset}: only the daily cadence exists, got {self.cadence!r}")
        if self.buffer < timedelta(seconds=10):
            raise ValueError(f"contract {self.dataset}: buffer must be at least 10 s (Prefect's proactive minimum)")

    @property
    def block_name(self) -> str:
        """The ReadinessContract block document name: the dataset with dots as dashes."""
        return self.dataset.replace(".", "-").replace("_", "-")

    def expected_time(self, window: Window) -> datetime:
        return datetime.combine(window.day + timedelta(days=1), self.expected_at, tzinfo=UTC)

    def window_due_at(self, moment: datetime) -> Window:
        """The window whose signal is due at `moment` (yesterday's, for a daily cadence)."""
        return Window(moment.astimezone(UTC).date() - timedelta(days=1))

    def last_due(self, now: datetime) -> Window:
        """The newest window whose expected time has passed at `now`."""
        window = self.window_due_at(now)
        return window if self.expected_time(window) <= now else Window(window.day - timedelta(days=1))

    def cron(self) -> str:
        return f"{self.expected_at.minute} {self.expected_at.hour} * * *"

    def usable_fallback(self, window: Window, candidate: date) -> bool:
        """A fallback may carry forward data no older than max_fallback_age, and never from the future."""
        return candidate < window.day and window.day - candidate <= self.max_fallback_age


def parse(entry: dict) -> ReadinessContract:
    """One contract from its YAML mapping; raises ValueError naming the dataset and the field."""
    dataset = entry.get("dataset", "?")

    def field(name: str, convert, default: object = ...):  # noqa: ANN001, ANN202
        if name not in entry and default is ...:
            raise ValueError(f"contract {dataset}: missing field {name!r}")
        value = entry.get(name, default)
        try:
            return convert(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"contract {dataset}: field {name!r} = {value!r}: {exc}") from None

    contract = dict(
        dataset=field("dataset", str),
        producer=field("producer", str),
        consumer=field("consumer", str),
        expected_at=field("expected_at", _time_of_day),
        buffer=field("buffer_seconds", lambda v: timedelta(seconds=float(v))),
        max_fallback_age=field("max_fallback_age_days", lambda v: timedelta(days=float(v))),
        give_up_after=field("give_up_after_hours", lambda v: timedelta(hours=float(v)), 72),
        owner=field("owner", str),
        alert_block=field("alert_block", str, "custom-webhook/lakeops-alerts"),
        cadence=field("cadence", str, "daily"),
        accept_additive_drift=field("accept_additive_drift", _flag, False),
        allowed_lateness_days=field("allowed_lateness_days", _days, 0),
        adaptive_lateness=field("adaptive_lateness", _flag, False),
        lateness_quantile=field("lateness_quantile", _fraction, 0.99),
    )
    try:
        return ReadinessContract(**contract)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _time_of_day(value: object) -> time:
    """A UTC time of day. YAML 1.1 reads an unquoted 16:40 as the base-60 integer 1000: undo that."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 24 * 60:
            raise ValueError("not a time of day")
        return time(value // 60, value % 60)
    if isinstance(value, time):
        return value
    return time.fromisoformat(str(value))


def _flag(value: object) -> bool:
    """A YAML boolean; a string such as "no" is refused rather than read as true."""
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


def _days(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("not a whole number of days >= 0")
    return value


def _fraction(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    number = float(value)  # type: ignore[arg-type]
    if not 0 < number <= 1:
        raise ValueError("not in (0, 1]")
    return number


def load(path: Path) -> list[ReadinessContract]:
    """Every contract in a contracts file."""
    body = yaml.safe_load(path.read_text()) or {}
    contracts = [parse(entry) for entry in body.get("contracts", [])]
    names = [c.dataset for c in contracts]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: a dataset has more than one contract: {sorted(names)}")
    return contracts


def find(contracts: list[ReadinessContract], dataset: str) -> ReadinessContract | None:
    return next((c for c in contracts if c.dataset == dataset), None)
