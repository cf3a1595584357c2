"""Run a command under a memory limit: a kernel memory cgroup where it can, an address-space limit where not.

`python -m lakeops.memlimit COMMAND...` is how the local work pool starts a flow run. It reads
LAKEOPS_MEMORY_MB (unset or empty: no limit, and the command is exec'd untouched). With a limit it
creates a memory cgroup below its own (cgroup v1 `memory`, or v2 where the memory controller is
delegated), with swap held at zero, starts the command inside it and waits, the way a container
runtime does: when the kernel's OOM killer ends the command it exits 137 ("status code 137" in the
worker's Crashed message), any other exit is passed through, and the cgroup is removed.

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
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lakeops.errors import LakeopsError
from lakeops.healing import usage

MEMORY_ENV = "LAKEOPS_MEMORY_MB"  # the work pool's `memory` job variable
FALLBACK_ENV = "LAKEOPS_MEMORY_FALLBACK"  # "1": skip cgroups and use the address-space limit
ENFORCED_ENV = "LAKEOPS_MEMORY_ENFORCED"  # set for the command: how its limit is enforced
OOM_EXIT_CODE = 137  # 128 + SIGKILL, what a shell or a container runtime reports for an OOM kill
CGROUP_ROOT = Path("/sys/fs/cgroup")
_PR_SET_PDEATHSIG = 1


class CgroupUnavailable(LakeopsError):
    """No memory cgroup could be created for the command; the message says why."""


@dataclass(frozen=True)
class _Layout:
    """The files of one cgroup version's memory controller."""

    version: int
    limit: str
    swap: str
    oom_events: str
    peak: str

    def swap_value(self, limit_bytes: int) -> int:
        return limit_bytes if self.version == 1 else 0  # v1 memsw counts memory + swap; v2 swap alone


_V1 = _Layout(
    1, "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.oom_control", "memory.max_usage_in_bytes"
)
_V2 = _Layout(2, "memory.max", "memory.swap.max", "memory.events", "memory.peak")


class ChildProcess(Protocol):
    """What the supervisor waits on: a `subprocess.Popen`, or a child forked for a warm slot."""

    pid: int

    def wait(self) -> int: ...

    def send_signal(self, signum: int, /) -> None: ...


def limit_mb(environ: Mapping[str, str]) -> int | None:
    """The memory limit in MB from LAKEOPS_MEMORY_MB; None when unset or empty. Raises ValueError if invalid."""
    raw = environ.get(MEMORY_ENV, "").strip()
    if raw in ("", "None", "null"):
        return None
    value = int(raw)
    if value <= 0:
        raise ValueError(f"{MEMORY_ENV} must be a positive number of MB, not {raw!r}")
    return value


@dataclass(frozen=True)
class MemoryCgroup:
    """A memory cgroup made for one command, below the cgroup of the process that made it."""

    path: Path
    layout: _Layout

    @classmethod
    def create(cls, megabytes: int, root: Path = CGROUP_ROOT, self_cgroup: str | None = None) -> "MemoryCgroup":
        """Make `lakeops/<pid>-<token>` below our own memory cgroup, limited to `megabytes` without swap.

        Raises CgroupUnavailable when there is no writable memory controller.
        """
        text = self_cgroup if self_cgroup is not None else Path("/proc/self/cgroup").read_text()
        parent, layout = _own_memory_cgroup(text, root)
        try:
            cgroup = cls(_make_own_dir(parent, layout), layout)
        except OSError as error:
            raise CgroupUnavailable(f"cannot create a cgroup below {parent}: {error}") from error
        path = cgroup.path
        limit = megabytes * 1024 * 1024
        try:
            (path / layout.limit).write_text(str(limit))
            if (path / layout.swap).exists():
                (path / layout.swap).write_text(str(layout.swap_value(limit)))
        except OSError as error:
            cgroup.remove()
            raise CgroupUnavailable(f"cannot set the memory limit of {path}: {error}") from error
        return cgroup

    def enter(self, pid: int | None = None) -> None:
        """Move a process (default: the calling one) into this cgroup; its later children follow.

        What the process already holds stays charged where it was (neither cgroup version moves it by
        default): the limit counts what it allocates from here on.
        """
        (self.path / "cgroup.procs").write_text(str(os.getpid() if pid is None else pid))

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup."""
        for line in _read(self.path / self.layout.oom_events).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def peak_mb(self) -> int | None:
        """The most memory the cgroup held at once, in MB, where the kernel reports it."""
        raw = _read(self.path / self.layout.peak).strip()
        return int(raw) // (1024 * 1024) if raw.isdigit() else None

    def remove(self) -> bool:
        """Remove the cgroup (and `lakeops/` when it is the last); False when processes still live in it."""
        try:
            self.path.rmdir()
        except OSError:
            return False
        with contextlib.suppress(OSError):  # another run's cgroup is still there
            self.path.parent.rmdir()
        return True


def sweep_stale(base: Path) -> list[Path]:
    """Remove the cgroups under `base` left by supervisors that died (their pid is gone); return them."""
    removed = []
    for path in base.iterdir():
        pid = path.name.partition("-")[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):  # still has processes in it: leave it
                path.rmdir()
                removed.append(path)
    return removed


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
    recorded peak), `cpu_before` the CPU seconds it had used by then (not the run's).
    """
    code = _wait(child)
    killed = code == -signal.SIGKILL and cgroup.oom_kills() > 0
    grown = cgroup.peak_mb()
    peak = None if grown is None else round(grown + held_mb)
    if not cgroup.remove():
        say(f"{cgroup.path} still holds processes; a later run removes it")
    exit_code = OOM_EXIT_CODE if killed else (code if code >= 0 else 128 - code)
    usage.record_from_env(exit_code, peak, megabytes, "cgroup", started, say, cpu_before)
    held = f" (+{held_mb:.0f} MB held before the limit)" if held_mb else ""
    if killed:
        say(
            f"out of memory: the kernel killed the command at its {megabytes} MB limit{held} (peak {peak} MB); exit 137"
        )
        return OOM_EXIT_CODE
    say(f"command exited {code}; peak memory {peak} MB of {megabytes} MB{held}")
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


def _wait(child: "ChildProcess") -> int:
    for forwarded in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(forwarded, lambda signum, _frame: child.send_signal(signum))
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


def _own_memory_cgroup(text: str, root: Path) -> tuple[Path, _Layout]:
    """Our memory cgroup's directory and layout, from /proc/self/cgroup; raises CgroupUnavailable."""
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") and (root / "memory").is_dir():
            return root / "memory" / path.lstrip("/"), _V1
    for line in text.splitlines():
        if line.startswith("0::") and "memory" in _read(root / "cgroup.controllers").split():
            return root / line[3:].lstrip("/"), _V2
    raise CgroupUnavailable(f"no memory controller under {root}")


def _make_own_dir(parent: Path, layout: _Layout) -> Path:
    """`parent/lakeops/<pid>-<token>`, after sweeping stale siblings away."""

    def make() -> Path:
        base = parent / "lakeops"
        base.mkdir(exist_ok=True)
        if layout.version == 2:
            _delegate_memory(parent, base)
        sweep_stale(base)
        path = base / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    try:
        return make()
    except FileNotFoundError:  # a finishing run removed the empty `lakeops/` between our two mkdirs
        return make()


def _delegate_memory(parent: Path, base: Path) -> None:
    """cgroup v2: the memory controller must be enabled for the children of `parent` and of `base`."""
    for directory in (parent, base):
        control = directory / "cgroup.subtree_control"
        if "memory" not in _read(control).split():
            control.write_text("+memory")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # someone else's live process
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def say(message: str) -> None:
    print(f"lakeops.memlimit: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
