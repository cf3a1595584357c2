"""prefect.yaml, written from the registry: a deployment per dataset layer, per dataset, and the platform's own.

`lakeops deployments` writes it; a unit test fails when the committed file is out of step with the
declarations. Each built layer's deployment is named after the table it writes and carries the trigger
that starts it: its input's ready event, or `inputs-ready` when it reads several inputs (the platform
opens that gate once every input has published the window, see lakeops/readiness/gate.py).
"""

from pathlib import Path
from typing import Any

import yaml

from lakeops.datasets.declaration import Dataset, Layer
from lakeops.datasets.names import (
    BACKFILL_FLOW,
    BUILD_FLOW,
    DEADLINE_HANDLER,
    DEADLINE_MISSED_FLOW,
    DRILL,
    DRILL_FLOW,
    HEALER,
    HEALER_FLOW,
    INGEST_FLOW,
    INPUTS_READY_EVENT,
    MAINTAIN_FLOW,
    MAINTENANCE,
    METRICS,
    METRICS_FLOW,
    OPEN_WINDOW_FLOW,
    PLATFORM_TAG,
    READY_EVENT,
    RELEASE_FLOW,
    REPLAY_FLOW,
    ROLLBACK_FLOW,
    backfill_deployment,
    opener_deployment,
    release_deployment,
    replay_deployment,
    rollback_deployment,
)
from lakeops.datasets.registry import Registry
from lakeops.metrics.runs import committed_tag
from lakeops.readiness import contracts

HEADER = """\
# lakeops deployments: written by `lakeops deployments` from the dataset declarations (datasets.yaml);
# edit the declarations, not this file (a unit test fails when it is out of step). `lakeops setup`
# applies it with `prefect deploy --all`. Consumers are started by readiness events, never by a
# clock: each build trigger matches the `lakeops.dataset.ready` event of its input (or, for a layer
# of several inputs, the `lakeops.dataset.inputs-ready` event of its own table) and templates the
# window and snapshot ids from the event's payload into the flow's parameter model. The SLA's
# proactive automations and the healer's are created by `lakeops setup` (admin/automations.py), so
# that a redeploy does not delete their open windows. Every deployment records the commit time of its
# code version in a tag (the build step asks git once per deployment; a worker may have no git).
"""
WORK_POOL = {"name": "{{ $LAKEOPS_WORK_POOL }}", "work_queue_name": "default", "job_variables": {}}
PULL = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $LAKEOPS_PROJECT_DIR }}"}}]
# When deployed: the commit time of the checkout's HEAD (strict ISO 8601), or `unknown` where git cannot tell.
COMMIT_TIME_STEP = "commit-time"
BUILD = [
    {
        "prefect.deployments.steps.run_shell_script": {
            "id": COMMIT_TIME_STEP,
            "script": "git log -1 --format=%cI 2>/dev/null || echo unknown",
            "shell": True,
            "stream_output": False,
        }
    }
]
CODE_COMMITTED = committed_tag("{{ $LAKEOPS_CODE_VERSION }}", "{{ " + COMMIT_TIME_STEP + ".stdout }}")
ENTRYPOINTS = {
    INGEST_FLOW: "flows/ingest.py:ingest",
    BUILD_FLOW: "flows/build_layer.py:build_layer",
    REPLAY_FLOW: "flows/replay.py:replay_dataset",
    BACKFILL_FLOW: "flows/backfill.py:backfill_dataset",
    RELEASE_FLOW: "flows/release.py:release_dataset",
    ROLLBACK_FLOW: "flows/release_rollback.py:release_rollback",
    OPEN_WINDOW_FLOW: "flows/sla_open_window.py:open_window",
    DEADLINE_MISSED_FLOW: "flows/sla_deadline_missed.py:deadline_missed",
    MAINTAIN_FLOW: "flows/maintain_tables.py:maintain_tables",
    HEALER_FLOW: "flows/heal_crashed_run.py:heal_crashed_run",
    DRILL_FLOW: "flows/memory_drill.py:memory_drill",
    METRICS_FLOW: "flows/platform_metrics.py:platform_metrics",
}


def document(registry: Registry) -> dict[str, Any]:
    """prefect.yaml's content for a registry (admin/ecs.py moves it onto an ECS pool)."""
    return {
        "name": "lakeops",
        "prefect-version": "3.9.1",
        "build": BUILD,
        "pull": PULL,
        "deployments": [*dataset_deployments(registry), *platform_deployments()],
    }


def render(registry: Registry) -> str:
    """The whole prefect.yaml for a registry."""
    return dump(HEADER, document(registry))


def dump(header: str, body: dict[str, Any]) -> str:
    return header + yaml.safe_dump(body, sort_keys=False, width=120, allow_unicode=True)


def write(registry: Registry, path: Path) -> bool:
    """Write prefect.yaml; True when it changed."""
    return write_text(path, render(registry))


def write_text(path: Path, text: str) -> bool:
    """Write a deployment file; True when it changed."""
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def dataset_deployments(registry: Registry) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for dataset in registry.datasets:
        out += [_sized(dataset, d) for d in _of_dataset(registry, dataset)]
    return out


def _sized(dataset: Dataset, deployment: dict[str, Any]) -> dict[str, Any]:
    """A dataset that declares its runs' memory sets the `memory` job variable of each of its deployments."""
    if dataset.memory_mb is None:
        return deployment
    return {**deployment, "work_pool": {**deployment["work_pool"], "job_variables": {"memory": dataset.memory_mb}}}


def _of_dataset(registry: Registry, dataset: Dataset) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if dataset.source is not None:
        out.append(_ingest(dataset))
    out += [_build(registry, dataset, layer) for layer in dataset.layers if layer.built]
    if any(layer.built for layer in dataset.layers):
        out.append(_replay(dataset))
        if dataset.source is not None:
            out.append(_backfill(dataset))
    if dataset.release:
        out += _release(dataset)
    if dataset.readiness is not None:
        out.append(_open_window(registry, dataset))
    return out


def _deployment(flow: str, name: str, description: str, tags: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": "{{ $LAKEOPS_CODE_VERSION }}",
        "description": description,
        "tags": [PLATFORM_TAG, *tags, CODE_COMMITTED],
        "entrypoint": ENTRYPOINTS[flow],
        "work_pool": dict(WORK_POOL),
        **extra,
    }


def _name(full: str) -> str:
    """The deployment part of `<flow>/<deployment>`."""
    return full.split("/", 1)[1]


def _tags(dataset: Dataset, *more: str) -> list[str]:
    return [f"dataset:{dataset.name}", f"team:{dataset.owner}", *more]


def _ingest(dataset: Dataset) -> dict[str, Any]:
    assert dataset.source is not None
    bronze = dataset.layer("bronze")
    return _deployment(
        INGEST_FLOW,
        str(bronze.table),
        f"Producer of {dataset.owner}. Ingests one file per window ({dataset.source.path}, {dataset.source.format}) "
        f"from the landing zone into {bronze.table}; a malformed or drifted file goes to {dataset.quarantine}.",
        _tags(dataset, "bronze"),
        parameters={"params": {"dataset": dataset.name}},
    )


def _build(registry: Registry, dataset: Dataset, layer: Layer) -> dict[str, Any]:
    qualified = f"{dataset.name}.{layer.name}"
    reads = ", ".join(str(registry.layer(name).table) for name in layer.inputs)
    return _deployment(
        BUILD_FLOW,
        str(layer.table),
        f"Consumer of {dataset.owner}. Rebuilds a window of {layer.table} from {reads} when "
        f"{'all of them are' if len(layer.inputs) > 1 else 'it is'} ready. {layer.description}".strip(),
        _tags(dataset, layer.name),
        parameters={"params": {"layer": qualified}},
        triggers=[_trigger(registry, qualified, layer)],
    )


def _trigger(registry: Registry, qualified: str, layer: Layer) -> dict[str, Any]:
    window = {"layer": qualified, "window": "{{ event.payload.window }}", "stale": "{{ event.payload.stale }}"}
    if len(layer.inputs) == 1:
        source = registry.layer(layer.inputs[0]).table
        return {
            "type": "event",
            "name": f"{layer.table} <- {source} ready",
            "enabled": True,
            "match": {"prefect.resource.id": source.resource_id},
            "expect": [READY_EVENT],
            "parameters": {"params": {**window, "snapshot_id": "{{ event.payload.snapshot_id }}"}},
        }
    sources = " + ".join(str(registry.layer(name).table) for name in layer.inputs)
    return {
        "type": "event",
        "name": f"{layer.table} <- {sources} all ready",
        "enabled": True,
        "match": {"prefect.resource.id": layer.table.resource_id},
        "expect": [INPUTS_READY_EVENT],
        "parameters": {"params": {**window, "inputs": "{{ event.payload.inputs }}"}},
    }


def _replay(dataset: Dataset) -> dict[str, Any]:
    return _deployment(
        REPLAY_FLOW,
        _name(replay_deployment(dataset.name)),
        f"Replays a transform version of {dataset.name} over a window range into a branch, from the input snapshots "
        "each window recorded; main does not move.",
        _tags(dataset, "versioning"),
        parameters={"params": {"dataset": dataset.name}},
    )


def _backfill(dataset: Dataset) -> dict[str, Any]:
    return _deployment(
        BACKFILL_FLOW,
        _name(backfill_deployment(dataset.name)),
        f"Backfills {dataset.name}: every landed window (or a range), landing -> each layer it builds, the windows "
        "fanned out on Dask (a local cluster, or LAKEOPS_DASK_ADDRESS); each window's chain in order.",
        _tags(dataset, "backfill"),
        parameters={"params": {"dataset": dataset.name}},
    )


def _release(dataset: Dataset) -> list[dict[str, Any]]:
    tables = ", ".join(str(dataset.layer(name).table) for name in dataset.release)
    return [
        _deployment(
            RELEASE_FLOW,
            _name(release_deployment(dataset.name)),
            f"Blue-green release of {dataset.name} ({tables}). Blue and green run on the same pinned input into "
            "branches; identical or within thresholds is promoted (a ref move per table), outside waits for an "
            "approve/reject typed into the paused run.",
            _tags(dataset, "release"),
            parameters={"params": {"dataset": dataset.name}},
        ),
        _deployment(
            ROLLBACK_FLOW,
            _name(rollback_deployment(dataset.name)),
            f"Rolls {dataset.name} ({tables}) back to the release before its live one, one atomic commit per table.",
            _tags(dataset, "release"),
            parameters={"params": {"dataset": dataset.name}},
        ),
    ]


def _open_window(registry: Registry, dataset: Dataset) -> dict[str, Any]:
    contract = contracts.of(registry, dataset)
    return _deployment(
        OPEN_WINDOW_FLOW,
        _name(opener_deployment(contract.dataset)),
        f"Opens each day's readiness window for {contract.dataset} at its expected time "
        f"({contract.expected_at:%H:%M} UTC); the deadline is {contract.buffer.total_seconds():.0f} s later.",
        _tags(dataset, "sla"),
        schedules=[
            {
                "cron": contract.cron(),
                "timezone": "UTC",
                "active": True,
                "parameters": {"params": {"dataset": contract.dataset}},
            }
        ],
        parameters={"params": {"dataset": contract.dataset}},
    )


def platform_deployments() -> list[dict[str, Any]]:
    return [
        _deployment(
            MAINTAIN_FLOW,
            MAINTENANCE,
            "Compacts small files, expires old snapshots (tags and recorded inputs kept), deletes orphan files, "
            "on every table of the platform.",
            ["maintenance"],
            schedules=[{"cron": "30 3 * * *", "timezone": "UTC", "active": True}],
        ),
        _deployment(
            DEADLINE_MISSED_FLOW,
            DEADLINE_HANDLER,
            "Started by a contract's proactive automation when a signal misses its deadline: stale fallback, alert.",
            ["sla"],
        ),
        _deployment(
            HEALER_FLOW,
            HEALER,
            "Started on each crashed lakeops run. Out of memory is re-run with double the memory up to memory_cap "
            "(one re-run per crash) and the size that worked is remembered; at the cap the owner is alerted.",
            ["healing"],
        ),
        _deployment(
            METRICS_FLOW,
            METRICS,
            "Reliability (success rate against 99.5%, error budget, burn-rate alerts), velocity (commit-to-production "
            "lead time, DORA keys) and cost per pipeline-hour of every lakeops deployment: the history to "
            "ops.run_facts and ops.metrics_daily, the report as artifacts.",
            ["metrics"],
            schedules=[{"cron": "30 0 * * *", "timezone": "UTC", "active": True}],
        ),
        _deployment(
            DRILL_FLOW,
            DRILL,
            "Capacity drill. Allocates and touches `megabytes` MB; run it with the job variable `memory` to check the "
            "limit and the healer.",
            ["drill"],
        ),
    ]
