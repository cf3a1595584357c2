"""What a flow run used, as its supervisor measured it: CPU seconds, peak memory, exit code.

The memory supervisor (`lakeops.memlimit`) wraps every flow run of the local work pool; with
LAKEOPS_USAGE_DIR set it writes one JSON record per run, named by the flow run's id, once the run's
process has exited: also after an out-of-memory kill, which the run itself cannot report. CPU
seconds are the run's process tree's (getrusage of the waited children); peak memory is the memory
cgroup's peak where the run had one, else the largest child's maximum resident set. A cgroup's peak
counts page cache (files read and written), which grows to the limit without the run needing it; the
peak working set (sampled: what the cgroup held less its inactive page cache, as cAdvisor and the
kubelet measure a container) is what the run needed.
"""

import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from lakeops.healing.failures import OOM_EXIT_CODES

USAGE_DIR_ENV = "LAKEOPS_USAGE_DIR"
FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"  # set by Prefect's workers for the flow run's process


@dataclass(frozen=True)
class Usage:
    flow_run_id: str
    exit_code: int
    cpu_seconds: float
    peak_memory_mb: float
    limit_mb: int | None
    enforced: str  # "cgroup", "rlimit" or "none"
    wall_seconds: float
    peak_working_set_mb: float | None = None  # in a cgroup: the largest sampled working set (else None)

    @property
    def memory_used_mb(self) -> float:
        """The memory the run needed: its peak working set where sampled (the cgroup's peak counts page cache,
        up to the limit), else its peak; the peak after an out-of-memory kill (it needed more than its limit,
        and a sample may have missed the last moments)."""
        if self.peak_working_set_mb is None or self.exit_code in OOM_EXIT_CODES:
            return self.peak_memory_mb
        return self.peak_working_set_mb


def children_cpu_seconds() -> float:
    """User + system CPU of every child waited for so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def children_peak_mb() -> float:
    """The largest waited child's maximum resident set (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def record(usage: Usage, directory: Path) -> Path:
    """Write the record atomically (temp file, then rename), so a reader never sees half of one."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{usage.flow_run_id}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(asdict(usage)))
    os.replace(partial, path)
    return path


def record_from_env(
    exit_code: int,
    peak_mb: int | None,
    limit: int | None,
    enforced: str,
    started: float,
    say: Callable[[str], None],
    cpu_before: float = 0.0,
    working_set_mb: int | None = None,
) -> None:
    """The supervisor's record of the run it waited for, where LAKEOPS_USAGE_DIR says (unset: nothing).

    `started` is the run's start on the monotonic clock; `cpu_before` the CPU seconds its process had
    used before the run was handed to it (a warm interpreter's imports), which are not the run's. A
    failure to write is said, never raised.
    """
    directory, flow_run_id = os.environ.get(USAGE_DIR_ENV), os.environ.get(FLOW_RUN_ENV)
    if not directory or not flow_run_id:
        return
    peak = float(peak_mb) if peak_mb is not None else children_peak_mb()
    cpu = max(children_cpu_seconds() - cpu_before, 0.0)
    wall = time.monotonic() - started
    measured = Usage(flow_run_id, exit_code, cpu, peak, limit, enforced, wall, working_set_mb)
    try:
        record(measured, Path(directory))
    except OSError as exc:  # never fail a run for its bookkeeping
        say(f"could not record usage in {directory}: {exc}")


def read_all(directory: Path) -> dict[str, Usage]:
    """Every record in the folder, by flow run id; unreadable files are skipped."""
    found: dict[str, Usage] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.json")):
        try:
            usage = Usage(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        found[usage.flow_run_id] = usage
    return found
