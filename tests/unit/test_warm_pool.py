"""The warm worker's pool for real processes: slots start ahead, are taken ready-first, replaced, and stopped.

The slots here are the real supervisor (`lakeops.healing.slot`) over a stand-in interpreter that says
ready after `LAKEOPS_TEST_WARM_SECONDS` and runs the `CODE` of the environment it is handed.
"""

import io
import logging
import os
import sys
import time

import anyio
import pytest

from workers.fork_server import ZYGOTE_COMMAND
from workers.interpreter import READY_LINE
from workers.pool import SLOT_COMMAND, Slot, WarmPool, WarmPoolSettings

STAND_IN = f"""
import json, os, sys, time
print("before ready", flush=True)
time.sleep(float(os.environ.get("LAKEOPS_TEST_WARM_SECONDS", "0")))
if os.environ.get("LAKEOPS_TEST_DIE_WARM"):
    sys.exit(3)
print("{READY_LINE} in 0.0 s", flush=True)
line = sys.stdin.readline()
if not line:
    sys.exit(0)
handoff = json.loads(line)
os.environ.update(handoff["env"])
if handoff["cwd"]:
    os.chdir(handoff["cwd"])
exec(handoff["env"]["CODE"])
"""
COMMAND = [sys.executable, "-m", "lakeops.healing.slot", sys.executable, "-c", STAND_IN]
LOG = logging.getLogger("test-warm-pool")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pool(size: int, out: io.StringIO | None = None) -> WarmPool:
    return WarmPool(WarmPoolSettings(interpreters=size), LOG, COMMAND, out or io.StringIO(), io.StringIO())


async def until(check, timeout: float = 20) -> None:  # noqa: ANN001
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_the_pool_fills_and_a_taken_slot_is_replaced_in_the_background() -> None:
    async with pool(2) as warm:
        await until(lambda: len(warm.idle) == 2 and all(s.ready.is_set() for s in warm.idle))
        before = {s.pid for s in warm.idle}

        taken = await warm.take()

        assert taken.pid in before and taken.ready.is_set()
        await until(lambda: len(warm.idle) == 2)
        assert taken.pid not in {s.pid for s in warm.idle}
        await taken.hand_off({"CODE": "pass", "PATH": os.environ["PATH"]}, None)
        assert await taken.process.wait() == 0


async def test_a_run_goes_to_a_ready_slot_before_an_older_one_still_warming(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEOPS_TEST_WARM_SECONDS", "30")
    async with pool(1) as warm:
        await until(lambda: len(warm.idle) == 1)
        slow = warm.idle[0]
        monkeypatch.setenv("LAKEOPS_TEST_WARM_SECONDS", "0")
        fast = await warm.take()  # nothing ready: the oldest, still warming...
        assert fast is slow and not slow.ready.is_set()
        await until(lambda: len(warm.idle) == 1 and warm.idle[0].ready.is_set())  # ...the replacement is ready first

        assert (await warm.take()).ready.is_set()
        slow.process.kill()
        await slow.process.wait()


async def test_the_slot_output_is_relayed_without_its_ready_line_and_the_run_sees_its_environment(
    tmp_path,  # noqa: ANN001
) -> None:
    out = io.StringIO()
    async with pool(1, out) as warm:
        code = "import os; print('run', os.environ['WINDOW'], os.getcwd()); raise SystemExit(5)"
        slot = await warm.hand_off({"CODE": code, "WINDOW": "2013-01-01", "PATH": os.environ["PATH"]}, str(tmp_path))
        assert await slot.process.wait() == 5
        await until(lambda: "run" in out.getvalue())

    lines = out.getvalue().splitlines()
    assert "before ready" in lines and f"run 2013-01-01 {tmp_path}" in lines
    assert not any(READY_LINE in line for line in lines)


async def test_a_slot_killed_while_idle_is_replaced_after_a_pause() -> None:
    async with pool(1) as warm:
        await until(lambda: len(warm.idle) == 1 and warm.idle[0].ready.is_set())
        victim = warm.idle[0]
        victim.process.kill()

        await until(lambda: len(warm.idle) == 1 and warm.idle[0] is not victim and warm.idle[0].ready.is_set())


async def test_slots_that_die_before_ready_are_retried_ever_more_slowly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEOPS_TEST_DIE_WARM", "1")
    started: list[float] = []
    pauses: list[float] = []
    async with pool(1) as warm:
        spawn = warm._spawn

        async def counted() -> Slot:
            started.append(time.monotonic())
            pauses.append(warm._pause)
            return await spawn()

        warm._spawn = counted  # type: ignore[method-assign]
        await until(lambda: len(started) >= 3, timeout=30)

    gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
    assert pauses[:3] == [1, 2, 4]  # the pause doubles while slots die before ready...
    assert gaps[0] >= 1 and gaps[1] >= 2  # ...and is waited before each new one


async def test_a_run_handed_to_a_slot_that_just_died_goes_to_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pool(2) as warm:
        await until(lambda: len(warm.idle) == 2 and all(s.ready.is_set() for s in warm.idle))
        dead = warm.idle[0]
        dead.process.kill()
        await dead.process.wait()
        # as if it died between the pool's check and the hand-off
        monkeypatch.setattr(Slot, "alive", property(lambda s: s is dead or s.process.returncode is None))

        slot = await warm.hand_off({"CODE": "pass", "PATH": os.environ["PATH"]}, None)

        assert slot is not dead and await slot.process.wait() == 0


async def test_leaving_the_pool_ends_every_idle_slot_and_its_interpreter() -> None:
    async with pool(2) as warm:
        await until(lambda: len(warm.idle) == 2 and all(s.ready.is_set() for s in warm.idle))
        pids = [s.pid for s in warm.idle]

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


async def test_with_a_fork_server_the_slots_interpreters_are_forked_from_it(caplog: pytest.LogCaptureFixture) -> None:
    settings = WarmPoolSettings(interpreters=2, imports="lakeops.healing")
    with caplog.at_level(logging.INFO, LOG.name):
        async with WarmPool(settings, LOG, SLOT_COMMAND, io.StringIO(), io.StringIO(), ZYGOTE_COMMAND) as warm:
            await until(lambda: len(warm.idle) == 2 and all(s.ready.is_set() for s in warm.idle), timeout=120)
            assert all(slot.forked for slot in warm.idle)
            assert "forked in" in warm.idle[0].describe()
    assert "Fork server (pid" in caplog.text and "warm interpreters are forked from it" in caplog.text


async def test_a_fork_server_that_dies_before_ready_leaves_the_slots_to_spawn_their_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dying = [sys.executable, "-c", "import sys; sys.exit(3)"]
    with caplog.at_level(logging.INFO, LOG.name):
        async with WarmPool(
            WarmPoolSettings(interpreters=2), LOG, COMMAND, io.StringIO(), io.StringIO(), dying
        ) as warm:
            await until(lambda: len(warm.idle) == 2 and all(s.ready.is_set() for s in warm.idle))
            assert not any(slot.forked for slot in warm.idle)
    assert "The fork server (pid" in caplog.text and "exited 3" in caplog.text
