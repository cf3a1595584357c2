"""The warm worker under abuse: consecutive flow runs, some killed, some failing, none allowed to harm the next.

One local SQLite server, the warm worker and the capacity-drill deployment. Each of `--runs` runs
(default 200) is, at random: a plain run; one that raises (MemoryError under the address-space
fallback); one whose interpreter is SIGKILLed while it runs; one whose slot (the supervisor) is
SIGKILLed while it runs; or a plain run after an idle interpreter of the pool was SIGKILLed. Each run
must end in the state its fate calls for. At the end no run may be left unfinished, and the only
lakeops processes left are the pool's idle slots (one interpreter each) and the fork server. Prints
the worker's resident memory over the runs and what the idle pool holds.

    .venv/bin/python benchmarks/warm_robustness.py [--runs 200] [--seed 7]
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from admin.setup import ensure_work_pool
from admin.stack import PROJECT_DIR, WORK_POOL, LocalStack, free_port
from lakeops.datasets import names
from lakeops.healing.slot import status_mb
from lakeops.iceberg.provenance import code_version
from workers.warm import WORKER_TYPE

DRILL = names.deployment(names.DRILL_FLOW, names.DRILL)
FATES = {"plain": 4, "raises": 1, "interpreter killed": 2, "slot killed": 1, "idle interpreter killed": 1}
EXPECTED = {
    "plain": StateType.COMPLETED,
    "raises": StateType.FAILED,
    "interpreter killed": StateType.CRASHED,
    "slot killed": StateType.CRASHED,
    "idle interpreter killed": StateType.COMPLETED,
}
UNFINISHED = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry.name)] = (parent, command)
    return found


def slots_of(worker: int) -> list[int]:
    return [pid for pid, (parent, cmd) in processes().items() if parent == worker and "lakeops.healing.slot" in cmd]


def interpreters(worker: int) -> list[int]:
    """The worker's interpreters: forked by its fork server, or spawned by its slots (one per slot either way)."""
    found, servers, slots = processes(), set(fork_servers(worker)), set(slots_of(worker))
    return [
        pid
        for pid, (parent, cmd) in found.items()
        if (parent in servers and "-m workers.zygote" in cmd) or (parent in slots and "-m workers.interpreter" in cmd)
    ]


def fork_servers(worker: int) -> list[int]:
    return [pid for pid, (parent, cmd) in processes().items() if parent == worker and "-m workers.zygote" in cmd]


def proportional_mb(pid: int) -> float:
    """A process's proportional set size in MB: its private pages plus its share of those it shares."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def start(fate: str) -> FlowRun:
    params = {"megabytes": 600 if fate == "raises" else 1, "hold_seconds": 0 if fate in ("plain", "raises") else 3}
    variables = {"memory": 300, "env": {"LAKEOPS_MEMORY_FALLBACK": "1"}} if fate == "raises" else {}
    return run_deployment(DRILL, parameters={"params": params}, job_variables=variables, timeout=0)


def wait(run: FlowRun, done, timeout: float = 90) -> FlowRun:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            current = client.read_flow_run(run.id)
            if done(current) or time.monotonic() > deadline:
                return current
            time.sleep(0.1)


def kill(pid: int) -> None:
    subprocess.run(["kill", "-9", str(pid)], check=False)


def one(fate: str, worker: int, rng: random.Random) -> tuple[FlowRun, float]:
    if fate == "idle interpreter killed":
        if idle := interpreters(worker):
            kill(rng.choice(idle))
    run = start(fate)
    if fate in ("interpreter killed", "slot killed"):
        running = wait(run, lambda r: r.state.is_running() and r.infrastructure_pid, 60)
        time.sleep(rng.uniform(0, 1.5))
        slot = int(running.infrastructure_pid)
        # the run's process: the one warm interpreter with threads (the engine's; an idle one has none),
        # or (started cold) the engine below its supervisor
        busy = [pid for pid in interpreters(worker) if threads(pid) > 1]
        children = [pid for pid, (parent, _) in processes().items() if parent == slot]
        target = slot if fate == "slot killed" else (busy or children or [slot])[0]
        kill(target)
    ended = wait(run, lambda r: r.state.is_final())
    return ended, status_mb(worker)


def start_latency(run: FlowRun) -> float | None:
    """Seconds from the run's creation to its Running state."""
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run.id)
    running = [s.timestamp for s in states if s.type == StateType.RUNNING]
    return (running[0] - run.created).total_seconds() if running and run.created else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--interpreters", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="lakeops-warm-bench-"))
    port = free_port()
    stack = LocalStack(api_url=f"http://127.0.0.1:{port}/api", home=root)
    try:
        stack.start_server(port, ui=False)
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            ensure_work_pool(WORK_POOL, WORKER_TYPE)
            deploy = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", names.DRILL]
            subprocess.run(deploy, cwd=PROJECT_DIR, env=stack.env(LAKEOPS_CODE_VERSION=code_version()), check=True)
            worker = stack.start_worker(LAKEOPS_WORKER="warm", LAKEOPS_WARM_INTERPRETERS=str(args.interpreters)).pid
            log = stack.home / "worker.log"
            while f"{args.interpreters} of {args.interpreters} idle ready" not in log.read_text(errors="replace"):
                time.sleep(0.5)
            idle = [*slots_of(worker), *interpreters(worker), *fork_servers(worker)]
            idle_mb = sum(proportional_mb(p) for p in idle)
            rss = [status_mb(worker)]
            servers = [status_mb(p) for p in fork_servers(worker)]
            print(
                f"worker {worker}: {rss[0]:.0f} MB resident; fork server {sum(servers):.0f} MB resident; idle pool "
                f"of {args.interpreters} with its fork server: {idle_mb:.0f} MB proportional set size (shared pages "
                "counted once)"
            )
            tally: Counter[tuple[str, str]] = Counter()
            wrong, latencies = [], []
            started = time.monotonic()
            for index in range(args.runs):
                fate = rng.choices(list(FATES), weights=list(FATES.values()))[0]
                run, resident = one(fate, worker, rng)
                rss.append(resident)
                tally[(fate, run.state.type.value)] += 1
                if run.state.type != EXPECTED[fate]:
                    wrong.append(f"run {index} ({fate}): {run.state.type.value} {run.state.message}")
                if fate == "plain" and (latency := start_latency(run)) is not None:
                    latencies.append(latency)
                if index % 20 == 19:
                    print(f"  {index + 1} runs, worker {resident:.0f} MB, {time.monotonic() - started:.0f} s")
            time.sleep(5)
            with get_client(sync_client=True) as client:
                unfinished = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=UNFINISHED))
                    )
                )
            slots = slots_of(worker)
            orphans = len(interpreters(worker)) - len(slots)  # each slot has exactly one
            print(f"\n{args.runs} runs in {time.monotonic() - started:.0f} s (seed {args.seed}):")
            for (fate, state), count in sorted(tally.items()):
                print(f"  {fate:24} {state:10} {count}")
            print(f"  not as expected: {len(wrong)}", *wrong[:10], sep="\n    ")
            print(f"  left unfinished: {len(unfinished)}")
            print(f"  slots left: {len(slots)} (the pool's {args.interpreters}); orphaned interpreters: {orphans}")
            print(
                f"  worker resident memory: start {rss[0]:.0f} MB, peak {max(rss):.0f} MB, end {rss[-1]:.0f} MB "
                f"(first half mean {statistics.mean(rss[: len(rss) // 2]):.0f}, "
                f"second half {statistics.mean(rss[len(rss) // 2 :]):.0f})"
            )
            print(
                f"  fork server resident memory: start {sum(servers):.0f} MB, "
                f"end {sum(map(status_mb, fork_servers(worker))):.0f} MB"
            )
            if latencies:
                quartiles = statistics.quantiles(latencies, n=4)
                print(f"  plain runs, created -> Running: p50 {quartiles[1]:.2f} s, p75 {quartiles[2]:.2f} s")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
