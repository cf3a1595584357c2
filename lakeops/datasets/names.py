"""Names of tables, datasets, events and resource ids: defined here once and imported elsewhere."""

from dataclasses import dataclass

READY_EVENT = "lakeops.dataset.ready"
WINDOW_OPENED_EVENT = "lakeops.sla.window-opened"
ALERT_FAILED_EVENT = "lakeops.sla.alert-failed"
HEAL_GAVE_UP_EVENT = "lakeops.heal.gave-up"  # an out-of-memory run killed at its memory cap: data-dependent
TASK_RECOVERED_EVENT = "lakeops.task.recovered"  # a task succeeded after transient failures (metrics)
WINDOW_LABEL = "lakeops.window"  # resource label carried by ready and window-opened events
RESOURCE_PREFIX = "lakeops.dataset."


@dataclass(frozen=True)
class TableRef:
    """An Iceberg table identified by namespace and name."""

    namespace: str
    name: str

    @property
    def identifier(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def resource_id(self) -> str:
        """The Prefect event resource id that names this dataset."""
        return f"{RESOURCE_PREFIX}{self.identifier}"

    def __str__(self) -> str:
        return self.identifier


BRONZE_FLIGHTS = TableRef("bronze", "flights")
SILVER_FLIGHTS = TableRef("silver", "flights")
GOLD_DAILY_DELAYS = TableRef("gold", "daily_delays")
QUARANTINE_FLIGHTS = TableRef("quarantine", "flights")
SLA_FACTS = TableRef("ops", "sla_facts")
RELEASES = TableRef("ops", "releases")

MEDALLION = (BRONZE_FLIGHTS, SILVER_FLIGHTS, GOLD_DAILY_DELAYS)
ALL_TABLES = (*MEDALLION, QUARANTINE_FLIGHTS, SLA_FACTS, RELEASES)
NAMESPACES = ("bronze", "silver", "gold", "ops", "quarantine")

FLIGHTS_NATURAL_KEY = ("year", "month", "day", "carrier", "flight", "origin", "sched_dep_time")
GOLD_DAILY_DELAYS_KEY = ("flight_date", "origin")

FLIGHTS = "flights"  # the dataset Silver and Gold derive from bronze.flights; released together

# What a release of a dataset switches, in switch order (a consumer table after the tables it reads).
RELEASE_TABLES: dict[str, tuple[TableRef, ...]] = {FLIGHTS: (SILVER_FLIGHTS, GOLD_DAILY_DELAYS)}
NATURAL_KEYS: dict[TableRef, tuple[str, ...]] = {
    SILVER_FLIGHTS: FLIGHTS_NATURAL_KEY,
    GOLD_DAILY_DELAYS: GOLD_DAILY_DELAYS_KEY,
}
