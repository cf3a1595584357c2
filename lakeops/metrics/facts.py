"""The facts the platform metrics are computed from: one record per flow run, as the orchestrator kept it.

The core knows nothing of Prefect: the edge (flows/platform_metrics.py) turns flow runs into RunFact
records, and every figure here is a pure function of them, of the release log and of a cost model.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Outcome(Enum):
    """What a finished run came to; unfinished runs (scheduled, pending, running, paused) are not facts yet."""

    COMPLETED = "completed"
    FAILED = "failed"  # Failed or TimedOut
    CRASHED = "crashed"  # the process or its infrastructure died
    CANCELLED = "cancelled"  # a person (or an automation) stopped it: counts neither way

    @classmethod
    def of_state(cls, state_type: str) -> "Outcome | None":
        """From an orchestrator state type (COMPLETED, FAILED, CRASHED, CANCELLED, ...); None while unfinished."""
        return _STATES.get(state_type.upper())


_STATES = {
    "COMPLETED": Outcome.COMPLETED,
    "FAILED": Outcome.FAILED,
    "TIMEDOUT": Outcome.FAILED,
    "CRASHED": Outcome.CRASHED,
    "CANCELLED": Outcome.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class RunFact:
    """One finished flow run.

    `unit` groups the attempts at one piece of work (a deployment's window: its re-runs by the healer or
    a person are the same unit); `expected_start` places it in time (a run's start time can be missing
    for a run that crashed before starting, so it is never used to place a run). `attempts` is the
    orchestrator's run count (flow-level retries inside one run). Requested resources come from job
    variables; used ones from the memory supervisor (CPU seconds, peak memory: the working set where it
    sampled one, `Usage.memory_used_mb`), when it recorded them.
    `code_committed_at` is the commit time of `code_version`, recorded on the deployment when it was deployed.
    """

    flow_run_id: str
    deployment: str
    dataset: str | None
    unit: str
    outcome: Outcome
    expected_start: datetime
    started: datetime | None = None
    ended: datetime | None = None
    attempts: int = 1
    code_version: str | None = None
    code_committed_at: datetime | None = None
    stale: bool = False
    work_pool_type: str = "process"
    requested_cpu: float | None = None  # vCPU
    requested_memory_mb: float | None = None
    cpu_seconds: float | None = None
    peak_memory_mb: float | None = None

    @property
    def duration_s(self) -> float:
        """Wall time from start to end; 0 when the run never started."""
        if self.started is None or self.ended is None:
            return 0.0
        return max(0.0, (self.ended - self.started).total_seconds())
