"""lakeops.memlimit for real: a kernel OOM kill in a memory cgroup (exit 137), or the address-space fallback."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakeops.healing import cgroup, memlimit
from lakeops.healing.cgroup import CgroupUnavailable, MemoryCgroup

ALLOCATE = "import sys; block = bytearray({mb} * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); print('ok')"


def cgroups_writable() -> bool:
    try:
        MemoryCgroup.create(64).remove()
    except (CgroupUnavailable, OSError):
        return False
    return True


needs_cgroups = pytest.mark.skipif(
    not cgroups_writable(), reason="no writable memory cgroup here (not root, or no delegation): fallback only"
)


def limited(megabytes: int | None, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env, memlimit.MEMORY_ENV: "" if megabytes is None else str(megabytes)}
    return subprocess.run(
        [sys.executable, "-m", "lakeops.memlimit", *command], env=environ, capture_output=True, text=True, timeout=60
    )


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def own_lakeops_cgroups() -> list[Path]:
    parent, _ = cgroup._own_memory_cgroup(Path("/proc/self/cgroup").read_text(), cgroup.CGROUP_ROOT)
    base = parent / "lakeops"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


@pytest.mark.parametrize(("raw", "value"), [(None, None), ("", None), (" 200 ", 200), ("None", None)])
def test_the_limit_is_read_from_the_environment(raw: str | None, value: int | None) -> None:
    assert memlimit.limit_mb({} if raw is None else {memlimit.MEMORY_ENV: raw}) == value


@pytest.mark.parametrize("raw", ["0", "-5", "lots"])
def test_a_bad_limit_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        memlimit.limit_mb({memlimit.MEMORY_ENV: raw})


def test_without_a_limit_the_command_runs_as_is() -> None:
    result = limited(None, *python(ALLOCATE.format(mb=300)))

    assert result.returncode == 0 and "ok" in result.stdout
    assert "lakeops.memlimit" not in result.stderr


@needs_cgroups
def test_above_the_limit_the_kernel_kills_it_and_the_exit_is_137() -> None:
    result = limited(100, *python(ALLOCATE.format(mb=300)))

    assert result.returncode == memlimit.OOM_EXIT_CODE
    assert "out of memory" in result.stderr and "100 MB" in result.stderr
    assert own_lakeops_cgroups() == []  # removed after the run


@needs_cgroups
def test_under_the_limit_it_runs_and_its_exit_code_passes_through() -> None:
    result = limited(
        200,
        *python(ALLOCATE.format(mb=50) + "; import os; print(os.environ['LAKEOPS_MEMORY_ENFORCED'])" + "; sys.exit(3)"),
    )

    assert result.returncode == 3
    assert "ok" in result.stdout and "cgroup v" in result.stdout and "200 MB" in result.stdout


@needs_cgroups
def test_a_signal_to_the_supervisor_reaches_the_command_and_its_death_is_reported_as_is() -> None:
    environ = {**os.environ, memlimit.MEMORY_ENV: "200"}
    ready = "import signal, sys, time; print('up', flush=True); time.sleep(30)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakeops.memlimit", *python(ready)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "up"
    proc.send_signal(signal.SIGTERM)

    assert proc.wait(timeout=20) == -signal.SIGTERM
    assert own_lakeops_cgroups() == []


@needs_cgroups
def test_a_supervisor_killed_outright_takes_its_command_along_and_its_cgroup_is_swept_later() -> None:
    environ = {**os.environ, memlimit.MEMORY_ENV: "200"}
    ready = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakeops.memlimit", *python(ready)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    child = int(proc.stdout.readline())
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not _alive(child)
    assert [p.name.split("-")[0] for p in own_lakeops_cgroups()] == [str(proc.pid)]  # left behind...
    assert limited(200, *python("pass")).returncode == 0
    assert own_lakeops_cgroups() == []  # ...and swept by the next run


def test_without_cgroups_it_falls_back_to_an_address_space_limit_and_says_so() -> None:
    result = limited(300, *python(ALLOCATE.format(mb=600)), **{memlimit.FALLBACK_ENV: "1"})

    assert result.returncode == 1
    assert "MemoryError" in result.stderr
    assert "FALLING BACK to an address-space limit of 300 MB" in result.stderr


def test_the_fallback_leaves_room_below_the_limit() -> None:
    result = limited(300, *python(ALLOCATE.format(mb=100)), **{memlimit.FALLBACK_ENV: "1"})

    assert result.returncode == 0 and "ok" in result.stdout


def test_cgroup_v2_files_are_written_where_the_memory_controller_is_delegated(tmp_path: Path) -> None:
    """A stand-in v2 tree (the kernel here mounts v1): the controller is enabled below us, the limit set."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    own = tmp_path / "user.slice" / "job"
    own.mkdir(parents=True)
    (own / "cgroup.subtree_control").write_text("")

    cgroup = MemoryCgroup.create(256, root=tmp_path, self_cgroup="0::/user.slice/job\n")

    assert cgroup.layout.version == 2 and cgroup.path.parent == own / "lakeops"
    assert (own / "cgroup.subtree_control").read_text() == "+memory"
    assert (cgroup.path / "memory.max").read_text() == str(256 * 1024 * 1024)


def test_no_memory_controller_means_cgroup_unavailable(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu pids\n")

    with pytest.raises(CgroupUnavailable, match="no memory controller"):
        MemoryCgroup.create(256, root=tmp_path, self_cgroup="0::/job\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") == -1


@needs_cgroups
def test_a_command_killed_outright_under_a_limit_is_reported_by_its_signal_not_as_a_supervisor_error() -> None:
    environ = {**os.environ, memlimit.MEMORY_ENV: "200"}
    ready = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lakeops.memlimit", *python(ready)], env=environ, stdout=subprocess.PIPE, text=True
    )
    os.kill(int(proc.stdout.readline()), signal.SIGKILL)

    assert proc.wait(timeout=20) == -signal.SIGKILL  # not 137 (no OOM), not 1 (SIGKILL has no handler to reset)
    assert own_lakeops_cgroups() == []
