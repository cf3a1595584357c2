"""The warm slot for real: a waiting command is handed one run's environment, under that run's memory limit."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lakeops.healing import memlimit, usage
from lakeops.healing import slot as slot_module

from .test_memlimit import _alive, needs_cgroups, own_lakeops_cgroups

# A stand-in for the warm interpreter: `warm` runs before it says ready, `run` after the hand-off.
WARM = """
import json, os, sys
{warm}
print("ready", flush=True)
line = sys.stdin.readline()
if not line:
    print("no run", flush=True)
    sys.exit(0)
handoff = json.loads(line)
os.environ.clear(); os.environ.update(handoff["env"]); os.chdir(handoff["cwd"])
{run}
"""
HOLD = "held = bytearray({mb} * 1024 * 1024); held[::4096] = b'x' * len(held[::4096])"
BURN = "n = 0\nfor i in range({loops}): n += i"


def slot(warm: str = "", run: str = "") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakeops.healing.slot", sys.executable, "-c", WARM.format(warm=warm, run=run)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def hand_off(proc: subprocess.Popen[str], cwd: Path, **env: str) -> tuple[int, str, str]:
    environment = {"PATH": os.environ["PATH"], **env}
    out, err = proc.communicate(json.dumps({"env": environment, "cwd": str(cwd)}) + "\n", timeout=60)
    return proc.returncode, out, err


def test_end_of_input_before_a_hand_off_stops_the_interpreter_at_once_and_exits_0() -> None:
    proc = slot(run="print('ran', flush=True)")
    interpreters = _children_of(proc.pid)
    out, _ = proc.communicate("", timeout=30)

    assert proc.returncode == 0 and "ran" not in out
    assert len(interpreters) == 1 and not _alive(interpreters[0])


def test_the_run_gets_exactly_the_handed_environment_and_working_directory(tmp_path: Path) -> None:
    run = "print(os.getcwd()); print(sorted(k for k in os.environ if k.startswith('RUN_'))); sys.exit(4)"
    proc = slot(run=run)

    code, out, _ = hand_off(proc, tmp_path, RUN_ONE="1", RUN_TWO="2")

    assert code == 4  # the run's own exit passes through
    assert out.splitlines() == [str(tmp_path), "['RUN_ONE', 'RUN_TWO']"]


def test_an_interpreter_niced_while_warming_runs_its_run_at_the_slots_priority(tmp_path: Path) -> None:
    proc = slot(warm="os.nice(10)", run="print(os.getpriority(os.PRIO_PROCESS, 0))")

    code, out, _ = hand_off(proc, tmp_path)

    assert code == 0 and int(out) == os.getpriority(os.PRIO_PROCESS, 0)


def test_usage_counts_the_run_not_the_warm_up(tmp_path: Path) -> None:
    proc = slot(warm=BURN.format(loops=30_000_000))  # about a second of CPU before ready

    code, _, _ = hand_off(proc, tmp_path, **{usage.USAGE_DIR_ENV: str(tmp_path / "usage"), usage.FLOW_RUN_ENV: "run-1"})

    recorded = usage.read_all(tmp_path / "usage")["run-1"]
    assert code == 0 and recorded.exit_code == 0 and recorded.enforced == "none"
    assert recorded.cpu_seconds < 0.3  # the warm-up's second is not the run's
    assert recorded.wall_seconds < 5


@needs_cgroups
def test_the_limit_counts_what_the_run_allocates_after_the_hand_off(tmp_path: Path) -> None:
    # 300 MB held warm, 60 MB allocated by the run: it fits a 150 MB limit, and its peak says both.
    proc = slot(warm=HOLD.format(mb=300), run=HOLD.format(mb=60).replace("held", "grown") + "\nprint('fits')")

    code, out, err = hand_off(
        proc,
        tmp_path,
        **{memlimit.MEMORY_ENV: "150", usage.USAGE_DIR_ENV: str(tmp_path / "usage"), usage.FLOW_RUN_ENV: "run-1"},
    )

    assert code == 0 and "fits" in out, err
    assert "MB held warm, not counted" in err
    recorded = usage.read_all(tmp_path / "usage")["run-1"]
    assert recorded.enforced == "cgroup" and recorded.limit_mb == 150
    assert 340 < recorded.peak_memory_mb < 450  # the cgroup's peak (about 60) plus the 300 held
    assert recorded.peak_working_set_mb is not None  # sampled while it ran, with what was held added
    assert 300 <= recorded.peak_working_set_mb <= recorded.peak_memory_mb
    assert own_lakeops_cgroups() == []


@needs_cgroups
def test_above_its_limit_the_run_is_killed_and_the_slot_exits_137(tmp_path: Path) -> None:
    proc = slot(run=HOLD.format(mb=300))

    code, _, err = hand_off(
        proc,
        tmp_path,
        **{memlimit.MEMORY_ENV: "100", usage.USAGE_DIR_ENV: str(tmp_path / "usage"), usage.FLOW_RUN_ENV: "run-1"},
    )

    assert code == memlimit.OOM_EXIT_CODE and "out of memory" in err
    assert usage.read_all(tmp_path / "usage")["run-1"].exit_code == memlimit.OOM_EXIT_CODE
    assert own_lakeops_cgroups() == []


def test_without_cgroups_the_run_gets_the_address_space_fallback_on_top_of_what_it_held_warm(tmp_path: Path) -> None:
    # 400 MB mapped warm, a 300 MB limit: 200 MB more fits; more than the limit and the threads' headroom raises.
    fits = "print(os.environ['LAKEOPS_MEMORY_ENFORCED'])\n" + HOLD.format(mb=200).replace("held", "grown")
    limit = {memlimit.MEMORY_ENV: "300", memlimit.FALLBACK_ENV: "1"}

    code, out, err = hand_off(slot(warm=HOLD.format(mb=400), run=fits), tmp_path, **limit)
    assert code == 0, err
    assert out.startswith("address-space limit (fallback") and "MB for the run over" in out and "FALLING BACK" in err

    too_much = HOLD.format(mb=300 + slot_module.THREADS_HEADROOM_MB + 300).replace("held", "grown")
    code, _, err = hand_off(slot(warm=HOLD.format(mb=400), run=too_much), tmp_path, **limit)
    assert code != 0 and "MemoryError" in err


def test_a_run_killed_outright_is_reported_by_its_signal(tmp_path: Path) -> None:
    proc = slot(run="print(os.getpid(), flush=True)\nimport time\ntime.sleep(60)")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"env": {"PATH": os.environ["PATH"]}, "cwd": str(tmp_path)}) + "\n")
    proc.stdin.close()
    os.kill(int(proc.stdout.readline()), signal.SIGKILL)

    assert proc.wait(timeout=20) == -signal.SIGKILL  # as the cold supervisor passes a kill through


def test_a_slot_killed_outright_takes_its_interpreter_along() -> None:
    proc = slot()
    interpreters = _children_of(proc.pid)
    assert len(interpreters) == 1
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(interpreters[0]) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not _alive(interpreters[0])


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def test_without_a_command_it_says_how_to_use_it() -> None:
    done = subprocess.run([sys.executable, "-m", "lakeops.healing.slot"], capture_output=True, text=True)

    assert done.returncode == 2 and "usage: python -m lakeops.healing.slot" in done.stderr
