"""The warm worker's idle interpreters: started ahead of runs, one handed to each run, replaced in the background.

A slot is `python -m lakeops.healing.slot python -m workers.interpreter`: the memory supervisor and an
interpreter that has imported everything a flow run needs, forked for it by the worker's fork server
(`workers.fork_server`) while that is ready, else spawned below it. The pool keeps
LAKEOPS_WARM_INTERPRETERS of them idle. `take()` gives a run the first one that is ready, else the
oldest (still importing, it is ahead of a cold start), and starts a replacement at once. Each slot's
output is relayed to the worker's own stdout and stderr for its whole life, as the process worker
relays a flow run's. A slot that dies idle is replaced after a pause that doubles while slots keep
dying before they are ready (a broken import must not spin the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import anyio
import anyio.abc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakeops.healing.forked import FORK_SERVER_ENV
from workers.fork_server import FIRST_PAUSE, LONGEST_PAUSE, ForkServerProcess
from workers.protocol import IMPORTS_ENV
from workers.relay import relay, relay_stdout

SLOT_COMMAND = [sys.executable, "-m", "lakeops.healing.slot", sys.executable, "-m", "workers.interpreter"]
FORK_SERVER_WAIT = 120.0  # seconds the first slots wait for the fork server before they spawn their own


class WarmPoolSettings(BaseSettings):
    """How many interpreters the warm worker keeps idle, and what they import (env prefix LAKEOPS_WARM_)."""

    model_config = SettingsConfigDict(env_prefix="LAKEOPS_WARM_", extra="ignore")

    interpreters: int = Field(
        default=3,
        ge=1,
        description="Idle interpreters kept ready. Forked from the fork server (the default), each is ready in "
        "about 0.1 s and shares the server's memory (about 400 MB: Prefect, pandas, pyarrow, pyiceberg, "
        "great_expectations and the flow modules); spawned, each holds that much and takes about 10 s of one "
        "core to warm up. Three let a window's producer, Silver and Gold all start warm.",
    )
    imports: str = Field(
        default="flows", description="Comma-separated packages whose every module an idle interpreter imports."
    )
    fork: bool = Field(
        default=True,
        description="Fork idle interpreters from one fork server that warmed up once (milliseconds each, memory "
        "shared copy-on-write) instead of each importing everything itself.",
    )


@dataclass(eq=False)
class Slot:
    """One supervisor + interpreter pair, idle until a run is handed to it."""

    process: anyio.abc.Process
    born: float = field(default_factory=time.monotonic)
    ready: anyio.Event = field(default_factory=anyio.Event)
    closed: anyio.Event = field(default_factory=anyio.Event)  # exited, its pipes closed
    warm_seconds: float | None = None
    ready_at: float | None = None  # wall clock (epoch seconds) when it said ready
    handed_off: bool = False
    forked: bool = False  # asked the fork server for its interpreter

    @property
    def pid(self) -> int:
        return self.process.pid

    def describe(self) -> str:
        """For the run's log: which interpreter took it, and how warm it was."""
        if self.ready_at is None:
            return f"warm interpreter slot {self.pid} (still importing when the run came)"
        since = datetime.fromtimestamp(self.ready_at, UTC).isoformat(timespec="milliseconds")
        how = "forked" if self.forked else "warmed"
        return f"warm interpreter slot {self.pid} (ready since {since}, {how} in {self.warm_seconds:.1f} s)"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def hand_off(self, env: dict[str, str], cwd: str | None) -> None:
        """Send the run: its environment and working directory, one JSON line; the slot starts it."""
        assert self.process.stdin is not None
        self.handed_off = True
        await self.process.stdin.send(json.dumps({"env": env, "cwd": cwd}).encode() + b"\n")
        await self.process.stdin.aclose()

    async def relay_stdout(self, sink: TextIO, on_ready: Callable[[Slot], None]) -> None:
        """Relay stdout to `sink`, minus the interpreter's ready line (which marks the slot ready)."""
        assert self.process.stdout is not None

        def said_ready() -> None:
            self.warm_seconds, self.ready_at = time.monotonic() - self.born, time.time()
            self.ready.set()
            on_ready(self)

        await relay_stdout(self.process.stdout, sink, said_ready)

    async def relay_stderr(self, sink: TextIO) -> None:
        assert self.process.stderr is not None
        await relay(self.process.stderr, sink)


class WarmPool:
    """Idle slots for a worker's runs; an async context manager that stops the idle ones when it exits."""

    def __init__(
        self,
        settings: WarmPoolSettings,
        logger: Any,
        command: list[str] = SLOT_COMMAND,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        fork_server: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self._fork_server = (
            ForkServerProcess(settings.imports, logger, fork_server, stdout, stderr) if fork_server else None
        )
        self._logger = logger
        self._command = command
        self._stdout = stdout
        self._stderr = stderr
        self._idle: list[Slot] = []
        self._slots: set[Slot] = set()  # every slot not yet closed, idle or running a flow
        self._pause = FIRST_PAUSE
        self._spawning = 0
        self._closing = False
        self._group: anyio.abc.TaskGroup | None = None

    @property
    def idle(self) -> list[Slot]:
        return list(self._idle)

    @property
    def has_ready(self) -> bool:
        """Whether an idle slot is alive and ready for a run now."""
        return any(slot.alive and slot.ready.is_set() for slot in self._idle)

    async def __aenter__(self) -> WarmPool:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._fill)
        return self

    async def _fill(self) -> None:
        """The first idle slots: forked, once the fork server is ready (or has not been in 120 s); else spawned."""
        if self._fork_server is not None:
            assert self._group is not None
            self._group.start_soon(self._fork_server.run)
            await self._fork_server.wait_ready(FORK_SERVER_WAIT)
        for _ in range(self.settings.interpreters):
            await self._add()

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True
        with anyio.move_on_after(5):  # a replacement being started joins the idle ones first
            while self._spawning:
                await anyio.sleep(0.05)
        idle = list(self._idle)
        for slot in idle:  # end of input: the interpreter exits without running anything
            if slot.process.stdin is not None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    await slot.process.stdin.aclose()
        with anyio.move_on_after(10):
            for slot in idle:
                await slot.process.wait()
        for slot in idle:
            if slot.alive:
                slot.process.kill()
        if self._fork_server is not None:
            await self._fork_server.stop()
        with anyio.move_on_after(5):  # the watchers close each ended slot's pipes
            for slot in [slot for slot in self._slots if slot in idle or not slot.alive]:
                await slot.closed.wait()
        assert self._group is not None
        self._group.cancel_scope.cancel()
        await self._group.__aexit__(None, None, None)

    async def hand_off(self, env: dict[str, str], cwd: str | None) -> Slot:
        """Give a run to a slot (`take()`); one that died just before is passed over for the next."""
        for _ in range(self.settings.interpreters + 2):
            slot = await self.take()
            try:
                await slot.hand_off(env, cwd)
                return slot
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                self._logger.warning("Warm interpreter (pid %s) died before its hand-off; taking another.", slot.pid)
        raise RuntimeError("no warm interpreter took the run: each died before its hand-off (see the worker's log)")

    async def take(self) -> Slot:
        """A slot for a run: the first ready, else the oldest; a replacement starts in the background."""
        self._idle = [slot for slot in self._idle if slot.alive]
        candidates = [slot for slot in self._idle if slot.ready.is_set()] or self._idle
        if candidates:
            slot = candidates[0]
            self._idle.remove(slot)
        else:
            slot = await self._spawn()
        assert self._group is not None, "the pool is used inside `async with`"
        self._group.start_soon(self._add)
        return slot

    async def _add(self) -> None:
        """One more idle slot, unless there are (or are about to be) enough."""
        if self._closing or len(self._idle) + self._spawning >= self.settings.interpreters:
            return
        self._spawning += 1
        try:
            self._idle.append(await self._spawn())
        finally:
            self._spawning -= 1

    async def _spawn(self) -> Slot:
        env = {**os.environ, IMPORTS_ENV: self.settings.imports}
        env.pop(FORK_SERVER_ENV, None)
        if self._fork_server is not None and (socket := self._fork_server.socket):
            env[FORK_SERVER_ENV] = socket
        process = await anyio.open_process(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        slot = Slot(process, forked=FORK_SERVER_ENV in env)
        self._slots.add(slot)
        assert self._group is not None
        self._group.start_soon(self._watch, slot)
        return slot

    def _said_ready(self, slot: Slot) -> None:
        ready = sum(s.ready.is_set() for s in self._idle)
        self._logger.info(
            "Warm interpreter slot %s ready in %.1f s; %d of %d idle ready.",
            slot.pid,
            slot.warm_seconds,
            ready,
            self.settings.interpreters,
        )

    async def _watch(self, slot: Slot) -> None:
        """Relay the slot's output until it exits; replace it if it died idle."""
        async with anyio.create_task_group() as relays:
            relays.start_soon(slot.relay_stdout, self._stdout or sys.stdout, self._said_ready)
            relays.start_soon(slot.relay_stderr, self._stderr or sys.stderr)
        code = await slot.process.wait()
        with anyio.CancelScope(shield=True):
            await slot.process.aclose()  # its pipes' transports, before the event loop ends
        slot.closed.set()
        self._slots.discard(slot)
        if slot.handed_off or self._closing:
            if slot.ready.is_set():
                self._pause = FIRST_PAUSE
            return
        if slot in self._idle:
            self._idle.remove(slot)
        self._logger.warning(
            "An idle warm interpreter (pid %s) exited %s %s; another starts in %.0f s.",
            slot.process.pid,
            code,
            "after it was ready" if slot.ready.is_set() else "before it was ready",
            self._pause,
        )
        await anyio.sleep(self._pause)
        if not slot.ready.is_set():
            self._pause = min(self._pause * 2, LONGEST_PAUSE)
        await self._add()
