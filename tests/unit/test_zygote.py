"""The fork server for real: one warm-up, a copy forked per slot, exits reported, nothing left behind."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeops.healing.forked import FORK_SERVER_ENV, ForkedChild, ForkRefused

from .test_memlimit import _alive
from .test_slot import WARM

SLOT = [sys.executable, "-m", "lakeops.healing.slot", sys.executable, "-m", "workers.interpreter"]
UNREACHABLE_API = "http://127.0.0.1:9/api"  # the discard port: nothing answers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str]]:
    path = str(tmp_path_factory.mktemp("zygote") / "fork.sock")
    zygote = subprocess.Popen(
        [sys.executable, "-m", "workers.zygote", path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LAKEOPS_WARM_IMPORTS": "lakeops.healing"},
    )
    assert zygote.stdout is not None and "ready" in zygote.stdout.readline()
    yield zygote, path
    assert zygote.stdin is not None
    zygote.stdin.close()
    assert zygote.wait(timeout=30) == 0  # end of input: it stops once its copies have ended
    assert not os.path.exists(path)


def forked_slot(path: str) -> subprocess.Popen[str]:
    slot = subprocess.Popen(
        SLOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, FORK_SERVER_ENV: path},
    )
    assert slot.stdout is not None and slot.stdout.readline().startswith("lakeops-warm: ready")
    return slot


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
        except OSError:
            pass
    return found


def handoff(tmp_path: Path) -> str:
    env = {"PATH": os.environ["PATH"], "PREFECT_API_URL": UNREACHABLE_API, "PREFECT__FLOW_RUN_ID": str(uuid.uuid4())}
    return json.dumps({"env": env, "cwd": str(tmp_path)}) + "\n"


def until(check, timeout: float = 20) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_server_forks_from_one_thread_and_each_slot_gets_its_own_copy(server) -> None:  # noqa: ANN001
    zygote, path = server
    assert len(os.listdir(f"/proc/{zygote.pid}/task")) == 1  # what makes the fork safe

    first, second = forked_slot(path), forked_slot(path)
    copies = children(zygote.pid)

    assert len(copies) == 2 and not set(copies) & {first.pid, second.pid}
    for slot in (first, second):  # end of input before a hand-off: the copy ran nothing and exits
        slot.communicate("", timeout=30)
        assert slot.returncode == 0
    until(lambda: not any(_alive(pid) for pid in copies))


def test_a_copy_runs_the_engine_in_the_handed_environment_and_its_exit_reaches_the_slot(
    server,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    _, path = server
    slot = forked_slot(path)

    _, err = slot.communicate(handoff(tmp_path), timeout=120)

    assert slot.returncode == 1  # the engine's own exit: it could not reach the API it was handed
    assert "127.0.0.1:9" in err or "Connection refused" in err, err[-2000:]


def test_a_copy_killed_during_its_run_is_reported_killed(server, tmp_path: Path) -> None:  # noqa: ANN001
    zygote, path = server
    slot = forked_slot(path)
    (copy,) = [pid for pid in children(zygote.pid)]
    assert slot.stdin is not None
    slot.stdin.write(handoff(tmp_path))
    slot.stdin.close()
    time.sleep(1)  # the engine is retrying the unreachable API

    os.kill(copy, signal.SIGKILL)

    assert slot.wait(timeout=30) == -signal.SIGKILL  # the slot dies of the same signal, as cold supervision does


def test_a_slot_that_goes_away_takes_its_idle_copy_with_it(server) -> None:  # noqa: ANN001
    zygote, path = server
    slot = forked_slot(path)
    (copy,) = children(zygote.pid)

    slot.kill()
    slot.wait()

    until(lambda: not _alive(copy))


def test_a_server_with_a_second_thread_refuses_to_fork_and_says_how_many(tmp_path: Path) -> None:
    path = str(tmp_path / "fork.sock")
    script = (
        "import threading, time\n"
        "from workers.zygote import ForkServer\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        f"server = ForkServer({path!r})\n"
        "print('listening', flush=True)\n"
        "server.serve()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        with pytest.raises(ForkRefused, match="refused 2 threads in the fork server"):
            ForkedChild(path)
        assert children(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


def test_without_a_server_the_slot_spawns_its_interpreter(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "lakeops.healing.slot", sys.executable, "-c", WARM.format(warm="", run="")]
    env = {**os.environ, FORK_SERVER_ENV: str(tmp_path / "nobody.sock")}
    slot = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )

    assert slot.stdout is not None and slot.stdout.readline().strip() == "ready"  # from the spawned one
    _, err = slot.communicate("", timeout=30)

    assert slot.returncode == 0
    assert "nobody.sock" in err and "starting the interpreter instead" in err
