"""Run a command under a memory limit: a kernel memory cgroup where it can, an address-space limit where not.

`python -m lakeops.memlimit COMMAND...` is how the local work pool starts a flow run. It reads
LAKEOPS_MEMORY_MB (unset or empty: no limit, and the command is exec'd untouched). With a limit it
creates a memory cgroup below its own (cgroup v1 `memory`, or v2 where the memory controller is
delegated), with swap held at zero, starts the command inside it and waits, the way a container
runtime does: when the kernel's OOM killer ends the command it exits 137 ("status code 137" in the
worker's Crashed message), any other exit is passed through, and the cgroup is removed
(`lakeops.healing.cgroup`).

Where cgroups cannot be written (not root, no delegation) it falls back to RLIMIT_AS: allocations
beyond the limit raise MemoryError in the flow (a Failed run, not a kill), and address space is
larger than resident memory, so the same figure is a looser limit. It says so on stderr.
"""

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lakeops.healing import usage
from lakeops.healing.cgroup import CgroupUnavailable, MemoryCgroup

MEMORY_ENV = "LAKEOPS_MEMORY_MB"  # the work pool's `memory` job variable
FALLBACK_ENV = "LAKEOPS_MEMORY_FALLBACK"  # "1": skip cgroups and use the address-space limit
ENFORCED_ENV = "LAKEOPS_MEMORY_ENFORCED"  # set for the command: how its limit is enforced
OOM_EXIT_CODE = 137  # 128 + SIGKILL, what a shell or a container runtime reports for an OOM kill
_PR_SET_PDEATHSIG = 1
SAMPLE_SECONDS = 0.2  # how often the supervisor reads the working set of a run's cgroup


class ChildProcess(Protocol):
    """What the supervisor waits on: a `subprocess.Popen`, or a child forked for a warm slot."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...

    def send_signal(self, signum: int, /) -> None: ...


@dataclass
class Peak:
    """The largest value `read` returned over the calls of `sample` (None: none read yet)."""

    read: Callable[[], float | None]
    peak: float | None = None

    def sample(self) -> None:
        now = self.read()
        if now is not None and (self.peak is None or now > self.peak):
            self.peak = now


def limit_mb(environ: Mapping[str, str]) -> int | None:
    """The memory limit in MB from LAKEOPS_MEMORY_MB; None when unset or empty. Raises ValueError if invalid."""
    raw = environ.get(MEMORY_ENV, "").strip()
    if raw in ("", "None", "null"):
        return None
    value = int(raw)
    if value <= 0:
        raise ValueError(f"{MEMORY_ENV} must be a positive number of MB, not {raw!r}")
    return value


def supervise(command: Sequence[str], cgroup: MemoryCgroup, megabytes: int) -> int:
    """Run `command` inside `cgroup` and wait; 137 when the OOM killer ended it, else its own exit."""

    def start_inside() -> None:  # runs in the child between fork and exec
        cgroup.enter()
        die_with_parent()

    env = {**os.environ, ENFORCED_ENV: enforced_by(cgroup, megabytes)}
    started = time.monotonic()
    child = subprocess.Popen(command, env=env, preexec_fn=start_inside)  # we run no threads: safe
    return wait_in_cgroup(child, cgroup, megabytes, started)


def enforced_by(cgroup: MemoryCgroup, megabytes: int) -> str:
    return f"cgroup v{cgroup.layout.version} {cgroup.path}, {megabytes} MB"


def wait_in_cgroup(
    child: "ChildProcess",
    cgroup: MemoryCgroup,
    megabytes: int,
    started: float,
    held_mb: float = 0.0,
    cpu_before: float = 0.0,
) -> int:
    """Wait for `child`, which runs in `cgroup`; record its usage, remove the cgroup; 137 after an OOM kill.

    `held_mb` is memory the child held before it entered the cgroup (charged elsewhere; added to the
    recorded peak), `cpu_before` the CPU seconds it had used by then (not the run's). While it waits it
    samples the cgroup's working set (what it holds less the page cache the kernel drops first): the
    kernel's peak counts page cache, which fills a cgroup up to its limit without ever being needed.
    """
    working = Peak(cgroup.working_set_mb)
    code = _wait(child, working.sample)
    killed = code == -signal.SIGKILL and cgroup.oom_kills() > 0
    grown = cgroup.peak_mb()
    peak = None if grown is None else round(grown + held_mb)
    working_peak = None if working.peak is None else round(working.peak + held_mb)
    if not cgroup.remove():
        say(f"{cgroup.path} still holds processes; a later run removes it")
    exit_code = OOM_EXIT_CODE if killed else (code if code >= 0 else 128 - code)
    usage.record_from_env(exit_code, peak, megabytes, "cgroup", started, say, cpu_before, working_peak)
    held = f" (+{held_mb:.0f} MB held before the limit)" if held_mb else ""
    if killed:
        say(
            f"out of memory: the kernel killed the command at its {megabytes} MB limit{held} (peak {peak} MB); exit 137"
        )
        return OOM_EXIT_CODE
    say(f"command exited {code}; peak memory {peak} MB (working set {working_peak} MB) of {megabytes} MB{held}")
    return pass_through(code)


def run_measured(command: Sequence[str], megabytes: int | None, enforced: str) -> int:
    """Without a cgroup: run `command` as a child, wait, and record what it used (getrusage)."""
    started = time.monotonic()
    child = subprocess.Popen(command, preexec_fn=die_with_parent)  # we run no threads: safe
    return wait_measured(child, megabytes, enforced, started)


def wait_measured(
    child: "ChildProcess", megabytes: int | None, enforced: str, started: float, cpu_before: float = 0.0
) -> int:
    """Wait for `child` (no cgroup) and record what it used: CPU since `cpu_before`, its largest resident set."""
    code = _wait(child)
    usage.record_from_env(code if code >= 0 else 128 - code, None, megabytes, enforced, started, say, cpu_before)
    return pass_through(code)


def die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):  # the child dies with its supervisor
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait(child: "ChildProcess", sample: Callable[[], object] | None = None) -> int:
    """Wait for `child`, passing our termination signals on; call `sample` every SAMPLE_SECONDS meanwhile."""
    for forwarded in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(forwarded, lambda signum, _frame: child.send_signal(signum))
    while sample is not None and child.poll() is None:
        sample()
        time.sleep(SAMPLE_SECONDS)
    return child.wait()


def pass_through(code: int) -> int:
    if code < 0:  # killed by another signal: die of the same one, as if there were no supervisor
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # (those two have no handler to reset)
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code if code >= 0 else 128 - code


def limit_address_space(megabytes: int, reason: str, pid: int = 0) -> str:
    """The fallback: cap a process's address space (default ours, inherited across exec); say so loudly.

    Returns how the limit is enforced (also set as LAKEOPS_MEMORY_ENFORCED for our own process).
    """
    limit = megabytes * 1024 * 1024
    _, hard = resource.prlimit(pid, resource.RLIMIT_AS)
    limit = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
    enforced = f"address-space limit (fallback: {reason}), {megabytes} MB"
    if not pid:
        os.environ[ENFORCED_ENV] = enforced
    say(
        f"WARNING: no memory cgroup ({reason}); FALLING BACK to an address-space limit of {megabytes} MB. "
        "Allocations beyond it raise MemoryError (the run fails, it is not killed), and address space "
        "exceeds resident memory, so this limit is looser than it reads."
    )
    return enforced


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lakeops.memlimit COMMAND...`: run COMMAND under LAKEOPS_MEMORY_MB (see the module doc)."""
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        say("usage: python -m lakeops.memlimit COMMAND [ARGS...]  (limit in LAKEOPS_MEMORY_MB)")
        return 2
    megabytes = limit_mb(os.environ)
    measured = bool(os.environ.get(usage.USAGE_DIR_ENV) and os.environ.get(usage.FLOW_RUN_ENV))
    if megabytes is None:
        if measured:
            return run_measured(command, None, "none")
        os.execvp(command[0], command)
    try:
        if os.environ.get(FALLBACK_ENV) == "1":
            raise CgroupUnavailable(f"{FALLBACK_ENV}=1")
        cgroup = MemoryCgroup.create(megabytes)
    except CgroupUnavailable as unavailable:
        limit_address_space(megabytes, str(unavailable))
        if measured:
            return run_measured(command, megabytes, "rlimit")
        os.execvp(command[0], command)
    say(f"limit {megabytes} MB (no swap) in cgroup v{cgroup.layout.version} {cgroup.path}")
    return supervise(command, cgroup, megabytes)


def say(message: str) -> None:
    print(f"lakeops.memlimit: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
