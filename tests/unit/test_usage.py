"""The supervisor records what each flow run used, for real: CPU seconds, peak memory, exit code, also after an OOM."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeops.healing import memlimit, usage

from .test_memlimit import needs_cgroups

WORK = (
    "import sys; block = bytearray({mb} * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); "
    "n = 0\nfor i in range(3_000_000): n += i\nsys.exit({code})"
)


def supervised(tmp_path: Path, megabytes: int | None, mb: int, code: int = 0, **env: str) -> usage.Usage | None:
    environ = {
        **os.environ,
        memlimit.MEMORY_ENV: "" if megabytes is None else str(megabytes),
        usage.USAGE_DIR_ENV: str(tmp_path / "usage"),
        usage.FLOW_RUN_ENV: "run-1",
        **env,
    }
    command = [sys.executable, "-m", "lakeops.memlimit", sys.executable, "-c", WORK.format(mb=mb, code=code)]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120)
    found = usage.read_all(tmp_path / "usage")
    recorded = found.get("run-1")
    assert recorded is None or recorded.exit_code == done.returncode
    return recorded


@needs_cgroups
def test_a_run_in_a_cgroup_records_its_cpu_and_the_cgroups_peak(tmp_path: Path):
    recorded = supervised(tmp_path, 512, 150, code=3)
    assert recorded is not None
    assert (recorded.exit_code, recorded.limit_mb, recorded.enforced) == (3, 512, "cgroup")
    assert 150 <= recorded.peak_memory_mb < 512
    assert 0 < recorded.cpu_seconds and 0 < recorded.wall_seconds


@needs_cgroups
def test_an_out_of_memory_kill_is_recorded_with_exit_137(tmp_path: Path):
    recorded = supervised(tmp_path, 100, 300)
    assert recorded is not None and recorded.exit_code == memlimit.OOM_EXIT_CODE
    assert recorded.peak_memory_mb >= 90  # killed at its limit


def test_without_a_limit_the_run_is_measured_by_getrusage(tmp_path: Path):
    recorded = supervised(tmp_path, None, 120)
    assert recorded is not None and (recorded.enforced, recorded.limit_mb) == ("none", None)
    assert recorded.peak_memory_mb >= 120 and recorded.cpu_seconds > 0


def test_the_address_space_fallback_is_measured_too(tmp_path: Path):
    recorded = supervised(tmp_path, 2048, 120, **{memlimit.FALLBACK_ENV: "1"})
    assert recorded is not None and (recorded.enforced, recorded.limit_mb) == ("rlimit", 2048)


def test_nothing_is_recorded_without_a_usage_folder(tmp_path: Path):
    assert supervised(tmp_path, None, 10, **{usage.USAGE_DIR_ENV: ""}) is None
    assert not (tmp_path / "usage").exists()


def test_unreadable_records_are_skipped(tmp_path: Path):
    folder = tmp_path / "usage"
    usage.record(usage.Usage("a", 0, 1.5, 100.0, None, "none", 2.0), folder)
    (folder / "b.json").write_text("{not json")
    (folder / "c.partial").write_text("half")
    assert list(usage.read_all(folder)) == ["a"] and usage.read_all(tmp_path / "none") == {}


@pytest.mark.parametrize("code", [0, 1])
def test_the_exit_code_passes_through(tmp_path: Path, code: int):
    recorded = supervised(tmp_path, None, 1, code=code)
    assert recorded is not None and recorded.exit_code == code


CACHE_WORK = (
    "import sys, time; block = bytearray(150 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096])\n"
    "with open(sys.argv[1], 'wb') as out:\n"
    "    for _ in range(300): out.write(b'y' * 1024 * 1024)\n"
    "time.sleep(1)"
)


@needs_cgroups
def test_the_working_set_leaves_out_the_page_cache_the_cgroups_peak_counts(tmp_path: Path):
    environ = {
        **os.environ,
        memlimit.MEMORY_ENV: "1024",
        usage.USAGE_DIR_ENV: str(tmp_path / "usage"),
        usage.FLOW_RUN_ENV: "run-1",
    }
    command = [sys.executable, "-m", "lakeops.memlimit", sys.executable, "-c", CACHE_WORK, str(tmp_path / "file")]
    subprocess.run(command, env=environ, check=True, capture_output=True, timeout=120)

    recorded = usage.read_all(tmp_path / "usage")["run-1"]
    assert recorded.peak_working_set_mb is not None
    assert 150 <= recorded.peak_working_set_mb < 300  # the 150 MB it holds and the interpreter, not the file
    assert recorded.peak_memory_mb >= recorded.peak_working_set_mb + 200  # the kernel's peak counts the file
