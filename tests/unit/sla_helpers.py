"""Helpers shared by the SLA tests: one contract, its window's clock, and fact builders."""

from datetime import UTC, date, datetime, time, timedelta

from lakeops.datasets.windows import Window
from lakeops.iceberg.provenance import Provenance
from lakeops.readiness import sla
from lakeops.readiness.contracts import ReadinessContract

DATASET = "bronze.flights"
# The flights contract as `contracts.of` derives it, with a non-default alert block (an environment's override).
CONTRACT = ReadinessContract(
    dataset=DATASET,
    producer="ingest/bronze.flights",
    consumer="build-layer/silver.flights",
    expected_at=time(6, 0),
    buffer=timedelta(minutes=30),
    max_fallback_age=timedelta(days=2),
    give_up_after=timedelta(hours=72),
    owner="flights-data-team",
    alert_block="lakeops-alerts",
)


def with_terms(contract: ReadinessContract = CONTRACT, **fields: object) -> ReadinessContract:
    """The contract with some fields changed, validated again (what an override does)."""
    return ReadinessContract.model_validate({**contract.model_dump(), **fields})


WINDOW = Window(date(2024, 5, 1))
EXPECTED = datetime(2024, 5, 2, 6, 0, tzinfo=UTC)  # CONTRACT.expected_time(WINDOW)
DEADLINE = EXPECTED + timedelta(minutes=30)
MADE_BY = Provenance("test", "run-1", WINDOW.key, "sla")


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment in May 2024, UTC."""
    return datetime(2024, 5, day, hour, minute, second, tzinfo=UTC)


def opened(window: Window = WINDOW, when: datetime | None = None, scheduled: bool = True) -> sla.SlaFact:
    moment = when or CONTRACT.expected_time(window)
    return sla.opening(CONTRACT, window, moment, scheduled)


def fact(kind: sla.Fact, when: datetime, window: Window = WINDOW, **fields) -> sla.SlaFact:
    return sla.SlaFact(DATASET, window.key, kind, when, **fields)


def signal(when: datetime, window: Window = WINDOW) -> sla.SlaFact:
    return fact(sla.Fact.SIGNAL, when, window)


def missed(when: datetime = DEADLINE + timedelta(seconds=5), window: Window = WINDOW) -> sla.SlaFact:
    return fact(sla.Fact.DEADLINE_MISSED, when, window, expected_at=EXPECTED, deadline=DEADLINE)


def fell_back(snapshot_id: int = 42, when: datetime = DEADLINE + timedelta(seconds=6)) -> sla.SlaFact:
    return fact(sla.Fact.FALLBACK, when, snapshot_id=snapshot_id, source_window="2024-04-30")


def no_fallback(when: datetime = DEADLINE + timedelta(seconds=6)) -> sla.SlaFact:
    return fact(sla.Fact.NO_FALLBACK, when, detail="nothing within 2 days")
