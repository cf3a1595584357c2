"""From the orchestrator's flow runs to run facts: which unit a run is an attempt at, its code version's commit time.

The edge copies each flow run into a `FlowRunRecord` (plain fields, no Prefect types); the rules are here:

- the unit is the run's `window` parameter (a deployment's window: a re-run of it by the healer or a person
  is the same unit), else the first run of its heal chain (`lakeops-heal-root:` tag), else the run itself;
- a run is stale when its `stale` parameter is true or its final state is named Stale;
- attempts are the orchestrator's run count (a run that crashed before it started counts one);
- requested CPU is in vCPUs (an ECS pool's `cpu` counts 1024 a vCPU), memory in MB;
- the code version is the deployment's version when the run was created, and its commit time the one the
  deployment recorded when it was deployed (tag `code-committed:<version>@<ISO time>`).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lakeops.datasets.names import COMMITTED_TAG, DATASET_TAG
from lakeops.healing.oom import ROOT_TAG
from lakeops.healing.usage import Usage
from lakeops.metrics import cost
from lakeops.metrics.facts import Outcome, RunFact


@dataclass(frozen=True)
class FlowRunRecord:
    """One flow run of a deployment, as the orchestrator keeps it; job variables already layered."""

    flow_run_id: str
    deployment: str  # <flow>/<deployment>
    state_type: str
    state_name: str
    expected_start: datetime
    started: datetime | None
    ended: datetime | None
    run_count: int
    deployment_version: str | None
    tags: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    job_variables: Mapping[str, Any] = field(default_factory=dict)  # the run's over its deployment's over the pool's
    work_pool_type: str = "process"


def committed_tag(version: str, committed_at: str) -> str:
    """The tag a deployment carries for its code version's commit time."""
    return f"{COMMITTED_TAG}{version}@{committed_at}"


def committed_in(tags: Iterable[str]) -> dict[str, datetime]:
    """The commit time of each code version the tags record; an unparseable time (no git at deploy) is skipped."""
    found = {}
    for tag in tags:
        if tag.startswith(COMMITTED_TAG):
            version, _, at = tag[len(COMMITTED_TAG) :].rpartition("@")
            parsed = _instant(at)
            if version and parsed is not None:
                found[version] = parsed
    return found


def fact_of(run: FlowRunRecord, usage: Usage | None = None) -> RunFact | None:
    """The run's fact, or None while it is unfinished (scheduled, pending, running, paused)."""
    outcome = Outcome.of_state(run.state_type)
    if outcome is None:
        return None
    params = _params(run.parameters)
    version = run.deployment_version or None
    cpu = _number(run.job_variables.get("cpu"))
    return RunFact(
        flow_run_id=run.flow_run_id,
        deployment=run.deployment,
        dataset=next((t[len(DATASET_TAG) :] for t in sorted(run.tags) if t.startswith(DATASET_TAG)), None),
        unit=unit_of(run),
        outcome=outcome,
        expected_start=run.expected_start,
        started=run.started,
        ended=run.ended,
        attempts=max(1, run.run_count),
        code_version=version,
        code_committed_at=committed_in(run.tags).get(version) if version else None,
        stale=_true(params.get("stale")) or run.state_name.lower() == "stale",
        work_pool_type=run.work_pool_type,
        requested_cpu=cost.vcpus(run.work_pool_type, cpu) if cpu is not None else None,
        requested_memory_mb=_number(run.job_variables.get("memory")),
        cpu_seconds=usage.cpu_seconds if usage else None,
        peak_memory_mb=usage.memory_used_mb if usage else None,
    )


def unit_of(run: FlowRunRecord) -> str:
    """The piece of work the run attempts: its window, else its heal chain's first run, else itself."""
    window = _params(run.parameters).get("window")
    if window not in (None, ""):
        return str(window)
    root = next((t[len(ROOT_TAG) :] for t in run.tags if t.startswith(ROOT_TAG)), None)
    return root or run.flow_run_id


def _params(parameters: Mapping[str, Any]) -> Mapping[str, Any]:
    """A lakeops flow takes one model, `params`; a flow of plain parameters is read as it is."""
    nested = parameters.get("params")
    return nested if isinstance(nested, Mapping) else parameters


def _true(value: object) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


def _number(value: object) -> float | None:
    """A job variable's number (templated ones arrive as strings); None when unset or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(str(value))
    except ValueError:
        return None


def _instant(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
