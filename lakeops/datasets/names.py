"""Names of events, resource ids and the platform's own tables: defined here once and imported elsewhere."""

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


# Deployments: a flow per kind of step, a deployment per dataset layer (named after the table it
# writes) or per dataset, and the platform's own flows under one name. The UI lists the deployment names.
INGEST_FLOW = "ingest"
BUILD_FLOW = "build-layer"
REPLAY_FLOW = "replay"
BACKFILL_FLOW = "backfill"
RELEASE_FLOW = "release"
ROLLBACK_FLOW = "release-rollback"
OPEN_WINDOW_FLOW = "sla-open-window"
DEADLINE_MISSED_FLOW = "sla-deadline-missed"
HEALER_FLOW = "heal-crashed-run"
MAINTAIN_FLOW = "maintain-tables"
DRILL_FLOW = "memory-drill"
# The platform's own deployments are named by what they do: an automation's action shows the name alone.
HEALER = "crashed-runs"
DEADLINE_HANDLER = "missed-deadlines"
MAINTENANCE = "all-tables"
DRILL = "capacity-drill"
WARM_WORKER_TYPE = "lakeops-warm"  # the warm worker's work pool type (workers/warm.py)
INPUTS_READY_EVENT = "lakeops.dataset.inputs-ready"  # every input of a multi-input layer is ready for a window
HEARTBEAT_EVENT = (
    "prefect.flow-run.heartbeat"  # Prefect's: a flow run's engine is alive (PREFECT_FLOWS_HEARTBEAT_FREQUENCY)
)
# The automation that marks a lakeops run Crashed when its heartbeats stop; the Crashed state's message
# starts with this name, which is how the healer tells a lost run from one whose process exited.
SILENT_RUNS_AUTOMATION = "lakeops healer: silent runs"


def deployment(flow: str, name: str) -> str:
    """A deployment's full name, `<flow>/<deployment>`, as run_deployment and automations take it."""
    return f"{flow}/{name}"


# Per dataset (or per contracted table), a deployment name says what it does to what: the UI's deployment
# list shows names first, and one name must not stand for several deployments there.
def replay_deployment(dataset: str) -> str:
    return deployment(REPLAY_FLOW, f"replay-{dataset}")


def backfill_deployment(dataset: str) -> str:
    return deployment(BACKFILL_FLOW, f"backfill-{dataset}")


def release_deployment(dataset: str) -> str:
    return deployment(RELEASE_FLOW, f"release-{dataset}")


def rollback_deployment(dataset: str) -> str:
    return deployment(ROLLBACK_FLOW, f"rollback-{dataset}")


def opener_deployment(table: str) -> str:
    """The deployment that opens a contracted table's readiness windows on its schedule."""
    return deployment(OPEN_WINDOW_FLOW, f"open-window-{table}")


SLA_FACTS = TableRef("ops", "sla_facts")
RELEASES = TableRef("ops", "releases")
RUN_FACTS = TableRef("ops", "run_facts")  # platform metrics: one row per finished flow run
METRICS_DAILY = TableRef("ops", "metrics_daily")  # platform metrics: each day's figures per scope

# Platform metrics: its flow and deployment, its alert event, and the tags a deployment's runs carry.
METRICS_FLOW = "platform-metrics"
METRICS = "daily"
BURN_ALERT_EVENT = "lakeops.metrics.burn-alert"  # an error budget burning too fast over two windows
PLATFORM_TAG = "lakeops"  # on every lakeops deployment, so on every run of one
DATASET_TAG = "dataset:"  # + the dataset a deployment acts on
# + <code version>@<commit time, ISO 8601>: written when deployed (a worker may have no git to ask)
COMMITTED_TAG = "code-committed:"
OPS = "ops"  # platform metadata: the release log, SLA facts
QUARANTINE = "quarantine"  # rejected batches, one table per dataset with a source
