"""Readiness contracts: when a dataset's signal is due, how long to wait, and what a fallback may use.

Contracts are versioned config (`contracts.yaml` at the project root); `lakeops setup` turns each
into a proactive automation and a ReadinessContract block that flow runs read.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import yaml

from lakeops.windows import Window


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
    try:
        return ReadinessContract(
            dataset=str(entry["dataset"]),
            producer=str(entry["producer"]),
            consumer=str(entry["consumer"]),
            expected_at=time.fromisoformat(str(entry["expected_at"])),
            buffer=timedelta(seconds=float(entry["buffer_seconds"])),
            max_fallback_age=timedelta(days=float(entry["max_fallback_age_days"])),
            give_up_after=timedelta(hours=float(entry.get("give_up_after_hours", 72))),
            owner=str(entry["owner"]),
            alert_block=str(entry.get("alert_block", "lakeops-alerts")),
            cadence=str(entry.get("cadence", "daily")),
        )
    except KeyError as missing:
        raise ValueError(f"contract {dataset}: missing field {missing}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"contract {dataset}: {exc}") from None


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
