"""What every flow shares: the I/O retry policy, the lakehouse, run info and signal publishing.

Flows set no `retries`: Prefect's flow retries take no condition and would re-run data-logic
failures; transient failures are retried by each io_task, RESOURCE by the flow-level healer.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pyarrow as pa
from prefect import Task, get_run_logger, task
from prefect.assets import Asset, AssetProperties, materialize
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
from prefect.client.schemas.objects import TaskRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events import Event
from prefect.exceptions import ObjectNotFound
from prefect.logging.loggers import task_run_logger
from prefect.runtime import flow_run
from prefect.states import State
from pyiceberg.catalog import Catalog

from blocks.lakehouse import IcebergLakehouse
from flows import events
from flows.events import post_confirmed
from lakeops.build.pipeline import RunInfo
from lakeops.build.validation import ValidationReport, validate
from lakeops.datasets import registry as registry_file
from lakeops.datasets.declaration import Layer
from lakeops.datasets.names import (
    BUILD_FLOW,
    INPUTS_READY_EVENT,
    TASK_RECOVERED_EVENT,
    WINDOW_LABEL,
    TableRef,
    deployment,
)
from lakeops.datasets.registry import Registry
from lakeops.errors import SignalNotDelivered
from lakeops.healing import failures
from lakeops.healing.failures import POLICIES, TASK_RETRIES, FailureClass
from lakeops.iceberg import lake
from lakeops.iceberg.provenance import code_version
from lakeops.readiness import gate, markers
from lakeops.readiness.ready import ReadySignal
from lakeops.settings import LakeSettings


def io_options() -> dict[str, Any]:
    schedule = POLICIES[FailureClass.TRANSIENT]
    return {
        "retries": TASK_RETRIES,
        "retry_delay_seconds": schedule.delays(),
        "retry_jitter_factor": schedule.jitter,
        "retry_condition_fn": retry_and_remember,
        "on_completion": [count_recovery],
        "on_failure": [forget_failures],
        "cache_policy": NO_CACHE,
    }


def io_task(fn: Callable[..., Any]) -> Any:
    """A task that touches I/O: each failure is retried within its class's budget (`failures.POLICIES`),
    with the TRANSIENT backoff and jitter (the only class retried at task level); a recovery is counted."""
    return task(**io_options())(fn)


def asset_of(registry: Registry, layer: Layer, catalog_name: str) -> Asset:
    """The Prefect asset of a layer: its Iceberg table, named, described and owned as declared."""
    dataset, _ = registry.by_table(layer.table)
    return Asset(
        key=f"iceberg://{catalog_name}/{layer.table.namespace}/{layer.table.name}",
        properties=AssetProperties(name=str(layer.table), description=layer.description, owners=[dataset.owner]),
    )


def materializing(registry: Registry, layer: Layer, catalog_name: str, fn: Callable[..., Any]) -> Any:
    """An io_task that materializes the layer's asset, with its inputs' assets upstream (Prefect's lineage)."""
    upstream = [asset_of(registry, registry.layer(name), catalog_name) for name in layer.inputs]
    return materialize(
        asset_of(registry, layer, catalog_name),
        asset_deps=upstream,
        task_run_name=f"build {layer.table}",
        **io_options(),
    )(fn)


def platform() -> Registry:
    """The datasets on this platform, from the registry file (LAKEOPS_REGISTRY; read once per process)."""
    return registry_file.load(LakeSettings().registry)


# The failures each running task run was retried after, until it ends (hooks run in its process).
_survived: dict[UUID, list[BaseException]] = {}
_survived_lock = threading.Lock()


def retry_and_remember(task: Task, task_run: TaskRun, state: State) -> bool:
    """Prefect's retry_condition_fn: the policy decides; a retried failure is kept for the recovery count."""
    retry = failures.retry_condition_fn(task, task_run, state)
    failure = failures.failure_in(state)
    if retry and failure is not None:
        with _survived_lock:
            _survived.setdefault(task_run.id, []).append(failure)
    return retry


def count_recovery(task: Task, task_run: TaskRun, state: State) -> None:
    """on_completion: a run that needed retries posts a confirmed `lakeops.task.recovered` event."""
    with _survived_lock:
        survived = _survived.pop(task_run.id, [])
    recovered = failures.recovery(task.name, task_run.run_count, survived)
    if recovered is None:
        return
    event = Event(
        event=TASK_RECOVERED_EVENT,
        resource={"prefect.resource.id": f"prefect.task-run.{task_run.id}", "prefect.resource.name": task.name},
        related=_related_run(),
        payload=recovered.payload(),
    )
    failures.retrying(lambda: post_confirmed(event), what=f"{TASK_RECOVERED_EVENT} for {task.name}")
    task_run_logger(task_run, task).info(
        "recovered after %s attempts, survived %s", recovered.attempts, ", ".join(recovered.survived)
    )


def forget_failures(task: Task, task_run: TaskRun, state: State) -> None:
    """on_failure: a run that did not recover is not counted."""
    with _survived_lock:
        _survived.pop(task_run.id, None)


@io_task
def open_lakehouse(block_name: str) -> tuple[IcebergLakehouse, Catalog]:
    """The named IcebergLakehouse block and its catalog, with the tables created if missing."""
    lakehouse = IcebergLakehouse.load(block_name)
    catalog = lakehouse.catalog()
    lake.ensure_tables(catalog, platform())
    return lakehouse, catalog


def run_info() -> RunInfo:
    return RunInfo(flow_run_id=str(flow_run.get_id() or "local"), code_version=code_version())


@io_task
def publish_ready(catalog: Catalog, ref: TableRef, signal: ReadySignal) -> ReadySignal:
    """Publish in order: (summary is already committed) marker file, then each event until its consumers started."""
    markers.write_marker(lake.load(catalog, ref), signal)
    event = Event(
        event=signal.event,
        resource={
            "prefect.resource.id": signal.resource_id,
            "prefect.resource.name": signal.dataset,
            WINDOW_LABEL: signal.window,
        },
        related=_related_run(),
        payload=signal.payload(),
    )
    registry = platform()
    published = registry.qualified(registry.by_table(ref)[1])
    post_until_started(event, single_input_consumers(registry, published, signal))
    for opened in gate.opened(catalog, registry, published, signal.window):
        gate_event = Event(
            id=opened.event_id,
            event=INPUTS_READY_EVENT,
            resource={"prefect.resource.id": opened.table.resource_id, WINDOW_LABEL: opened.window},
            related=_related_run(),
            payload=opened.payload(),
        )
        post_until_started(gate_event, [Consumer(opened.table, {"window": opened.window, "inputs": opened.inputs})])
        get_run_logger().info("every input of %s is ready for %s: %s", opened.layer, opened.window, opened.inputs)
    get_run_logger().info(
        "%s ready: window %s, snapshot %s, %s rows (event %s confirmed)",
        signal.dataset,
        signal.window,
        signal.snapshot_id,
        signal.row_count,
        event.id,
    )
    return signal


# An event is accepted into the server's memory before its automations act on it: a server killed in
# between forgets it, and the consumer it should have started never runs (measured on SQLite: killed 0,
# 0.3, 1 and 2.5 s after a Bronze commit, no consumer run, no alert). So a publisher waits until the
# consumer's run exists and posts the event again when it does not. The same id each time: a server that
# saw it ignores it, one that restarted evaluates it; a task retry (after the last post) uses a new id.
STARTED_WITHIN = 20.0  # s per post; an automation creates the run about 2 s after its event on SQLite
POSTS = 4  # then SignalNotDelivered: the task's retries, then the flow's failure alert


@dataclass(frozen=True)
class Consumer:
    """A layer's deployment that an event starts, and the parameters its run gets from the event."""

    table: TableRef
    params: dict[str, Any]  # the run's `params` fields that the trigger templates from the event

    @property
    def deployment(self) -> str:
        return deployment(BUILD_FLOW, str(self.table))

    def started_by(self, run_params: dict[str, Any]) -> bool:
        return all(run_params.get(name) == value for name, value in self.params.items())


def single_input_consumers(registry: Registry, published: str, signal: ReadySignal) -> list[Consumer]:
    """The layers that read only `published`: its ready event starts each of them on the signal's snapshot."""
    return [
        Consumer(layer.table, {"window": signal.window, "snapshot_id": signal.snapshot_id})
        for _, layer in registry.consumers(published)
        if len(layer.inputs) == 1
    ]


def post_until_started(event: Event, consumers: list[Consumer]) -> None:
    """Post the event, then wait for each consumer's run; post it again (same id) while one is missing."""
    with get_client(sync_client=True) as client:
        waiting = _deployed(client, consumers)
        for attempt in range(1, POSTS + 1):
            if waiting:  # a consumer's run confirms delivery
                events.emit(event)
            else:  # nothing to wait for: the event is read back
                post_confirmed(event)
            deadline = time.monotonic() + STARTED_WITHIN
            while waiting and time.monotonic() < deadline:
                waiting = [(dep_id, c) for dep_id, c in waiting if not _has_run(client, dep_id, c)]
                if waiting:
                    time.sleep(0.5)
            if not waiting:
                return
            missing = ", ".join(c.deployment for _, c in waiting)
            get_run_logger().warning(
                "no run of %s for %s %s within %.0f s of post %s of %s%s",
                missing,
                event.event,
                event.id,
                STARTED_WITHIN,
                attempt,
                POSTS,
                ": posting it again" if attempt < POSTS else "",
            )
    raise SignalNotDelivered(f"{event.event} {event.id} started no run of {missing} in {POSTS} posts")


def _deployed(client: SyncPrefectClient, consumers: list[Consumer]) -> list[tuple[UUID, Consumer]]:
    """The consumers deployed on this server (a flow run by hand, or on a test server, has none to wait for)."""
    found = []
    for consumer in consumers:
        try:
            found.append((client.read_deployment_by_name(consumer.deployment).id, consumer))
        except ObjectNotFound:
            continue
    return found


def _has_run(client: SyncPrefectClient, deployment_id: UUID, consumer: Consumer) -> bool:
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=20,
    )
    return any(consumer.started_by(run.parameters.get("params", {})) for run in runs)


@task(name="audit", cache_policy=NO_CACHE)
def audit(layer: Layer, frame: pa.Table) -> ValidationReport:
    """The layer's GX suite on a window's rows before they are committed (a task of its own in the UI).

    A pass is logged; a failure raises in the pipeline (nothing committed), never retried (DATA_LOGIC).
    """
    report = validate(layer, frame)
    if report.success:
        get_run_logger().info(
            "%s: %s rows passed %s checks of %s; committing", layer.table, report.rows, report.evaluated, report.suite
        )
    return report


def _related_run() -> list[dict[str, str]]:
    run_id = flow_run.get_id()
    if not run_id:
        return []
    return [
        {
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": str(flow_run.get_name()),
        }
    ]
