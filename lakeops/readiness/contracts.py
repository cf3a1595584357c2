"""Readiness contracts: a dataset's Bronze signal is due at a time; a miss alerts and falls back.

The terms (`Readiness`, with their defaults and validation) are declared with the dataset and may
be overridden per environment in the registry file; the contract adds who produces and consumes
the signal, derived from the registry. `lakeops setup` turns each into a ReadinessContract block
and a proactive automation.
"""

from datetime import UTC, date, datetime, timedelta

from pydantic import Field

from lakeops.datasets.declaration import Dataset, Readiness
from lakeops.datasets.names import BUILD_FLOW, INGEST_FLOW, deployment
from lakeops.datasets.registry import Registry, bronze_of
from lakeops.datasets.windows import Window


class ReadinessContract(Readiness):
    """One dataset's promise: its Bronze signal for window W lands by `expected_at` on W + 1 day (UTC)."""

    dataset: str = Field(description="The contracted table, whose ready event is awaited, e.g. bronze.orders.")
    producer: str = Field(description="Deployment that publishes the signal.")
    consumer: str = Field(description="Deployment that runs on it, and on the stale fallback.")
    owner: str = Field(description="Owning team, named in alerts.")

    @property
    def block_name(self) -> str:
        """The ReadinessContract block document name: the table with dots as dashes."""
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


def of(registry: Registry, dataset: Dataset) -> ReadinessContract:
    """The contract of a dataset's Bronze signal: its declared terms, its producer and first consumer."""
    if dataset.readiness is None:
        raise ValueError(f"dataset {dataset.name} declares no readiness contract")
    bronze = bronze_of(dataset)
    consumers = registry.consumers(f"{dataset.name}.{bronze.name}")
    if not consumers:
        raise ValueError(f"dataset {dataset.name}: nothing reads {bronze.table}, so a missed signal has no consumer")
    return ReadinessContract(
        **dataset.readiness.model_dump(),
        dataset=str(bronze.table),
        producer=deployment(INGEST_FLOW, str(bronze.table)),
        consumer=deployment(BUILD_FLOW, str(consumers[0][1].table)),
        owner=dataset.owner,
    )


def all_of(registry: Registry) -> list[ReadinessContract]:
    """The contract of every dataset that declares one."""
    return [of(registry, d) for d in registry.datasets if d.readiness is not None]


def find(contracts: list[ReadinessContract], dataset: str) -> ReadinessContract | None:
    return next((c for c in contracts if c.dataset == dataset), None)
