"""`python -m lakeops.healing.slot COMMAND...`: hold a warm command, then run one flow run in it under its memory limit.

The warm worker keeps a few of these idle. The slot starts COMMAND (a warm interpreter) at once,
which imports what runs need and waits; or, when LAKEOPS_FORK_SERVER names the worker's fork server,
has it fork one that imported everything already (`lakeops.healing.forked`). When the worker hands
the slot a flow run (one JSON line on stdin: `{"env": {...}, "cwd": ...}`) the slot takes the run's
environment as its own, moves the interpreter into a memory cgroup of the run's LAKEOPS_MEMORY_MB
(the memory supervisor's cgroup, `lakeops.healing.memlimit`), passes the line on and waits, as the
cold supervisor does: exit 137 after an out-of-memory kill, the interpreter's own exit otherwise,
and a usage record for the run.

What the interpreter imported while warm stays charged to the worker, not to the run's cgroup: the
limit counts what the run allocates after the hand-off, and the recorded peak adds what the
interpreter held before it (its resident set at the hand-off). A forked interpreter's pages stay
shared with the fork server until the run writes to them: the copies it makes then are the run's,
and count (so the recorded peak is an upper bound). Its CPU before the hand-off is not the run's
either. End of input before a hand-off (the worker stopped or dropped the slot): the
interpreter is stopped at once (it ran nothing), and the slot exits 0. An
interpreter that dies before its hand-off takes the slot with it (exit code passed through), so the
worker never hands a run to a dead one.
"""

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence

from lakeops.healing import memlimit
from lakeops.healing.cgroup import CgroupUnavailable, MemoryCgroup
from lakeops.healing.forked import FORK_SERVER_ENV, ForkedChild, ForkRefused

Child = subprocess.Popen[bytes] | ForkedChild

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
THREADS_HEADROOM_MB = 512  # address space the engine's threads map after the hand-off (arenas, stacks)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (Linux /proc), 0.0 where it cannot be read."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """A field of a live process's status in MB (VmRSS: resident, VmSize: address space); 0.0 where unreadable."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def hand_off(child: Child, handoff: dict[str, object]) -> int:
    """Give the waiting `child` its run under the run's memory limit, wait for it, return the slot's exit code."""
    environment = handoff["env"]
    assert isinstance(environment, dict)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in environment.items()})
    megabytes = memlimit.limit_mb(os.environ)
    started, cpu_before, held = time.monotonic(), cpu_seconds(child.pid), status_mb(child.pid)
    cgroup, kind, enforced = None, "none", "none"
    if megabytes is not None:
        try:
            if os.environ.get(memlimit.FALLBACK_ENV) == "1":
                raise CgroupUnavailable(f"{memlimit.FALLBACK_ENV}=1")
            cgroup = MemoryCgroup.create(megabytes)
            cgroup.enter(child.pid)
            enforced = memlimit.enforced_by(cgroup, megabytes)
            memlimit.say(f"limit {megabytes} MB (no swap) in {enforced}; {held:.0f} MB held warm, not counted")
        except CgroupUnavailable as unavailable:
            if cgroup is not None:
                cgroup.remove()
                cgroup = None
            # Address space, unlike a cgroup, counts what the interpreter mapped while warm: the run's
            # allowance is on top of that, as the cgroup's is.
            # Plus room for the threads the engine starts (each maps a malloc arena and a stack).
            allowance = megabytes + round(status_mb(child.pid, "VmSize")) + THREADS_HEADROOM_MB
            enforced = memlimit.limit_address_space(allowance, str(unavailable), child.pid)
            kind, enforced = "rlimit", f"{enforced} ({megabytes} MB for the run over {allowance - megabytes} MB warm)"
    environment[memlimit.ENFORCED_ENV] = enforced
    with contextlib.suppress(OSError):  # an interpreter still importing (niced) now has a run waiting on it
        os.setpriority(os.PRIO_PROCESS, child.pid, os.getpriority(os.PRIO_PROCESS, 0))
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps(handoff).encode() + b"\n")
        child.stdin.close()
    except BrokenPipeError:
        memlimit.say("the warm interpreter exited before its hand-off")
    if cgroup is not None:
        assert megabytes is not None
        return memlimit.wait_in_cgroup(child, cgroup, megabytes, started, held, cpu_before)
    return memlimit.wait_measured(child, megabytes, kind, started, cpu_before)


def start(command: list[str]) -> Child:
    """The interpreter: forked by the fork server named in LAKEOPS_FORK_SERVER, else COMMAND, spawned."""
    if server := os.environ.get(FORK_SERVER_ENV):
        try:
            return ForkedChild(server)
        except ForkRefused as refused:
            memlimit.say(f"{refused}; starting the interpreter instead")
    # We run no threads: preexec_fn is safe. The interpreter dies with its slot.
    return subprocess.Popen(command, stdin=subprocess.PIPE, preexec_fn=memlimit.die_with_parent)


def main(argv: Sequence[str] | None = None) -> int:
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        memlimit.say("usage: python -m lakeops.healing.slot COMMAND [ARGS...]  (the run on stdin, one JSON line)")
        return 2
    child = start(command)
    while not select.select([sys.stdin], [], [], 0.5)[0]:
        if (code := child.poll()) is not None:  # it died waiting (a failed import, a kill): so does the slot
            memlimit.say(f"the warm interpreter exited {code} before a run was handed to it")
            return memlimit.pass_through(code)
    line = sys.stdin.buffer.readline()
    if not line.strip():  # the worker stopped or dropped us: nothing was handed over, so nothing is lost
        assert child.stdin is not None
        child.stdin.close()
        child.terminate()  # no need to wait for the rest of its imports
        child.wait()
        return 0
    return hand_off(child, json.loads(line))


if __name__ == "__main__":
    raise SystemExit(main())
