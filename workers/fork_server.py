"""The warm pool's fork server: one `python -m workers.zygote` per worker, restarted when it dies.

While it is ready, the pool's slots have their interpreters forked from it (LAKEOPS_FORK_SERVER in
the slot's environment) instead of each importing everything itself. While it is not (starting,
or dead and waiting to start again), slots spawn their own, as without it. Its output goes to the
worker's, as the slots' does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, TextIO

import anyio
import anyio.abc

from workers.protocol import IMPORTS_ENV
from workers.relay import relay, relay_stdout

ZYGOTE_COMMAND = [sys.executable, "-m", "workers.zygote"]
FIRST_PAUSE, LONGEST_PAUSE = 1.0, 60.0  # seconds before a process that died is started again, doubling


class ForkServerProcess:
    """Runs the fork server (`run()`, a task) until `stop()`; `socket` is its address while it is ready."""

    def __init__(
        self,
        imports: str,
        logger: Any,
        command: list[str] = ZYGOTE_COMMAND,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._directory = tempfile.mkdtemp(prefix="lakeops-fork-")
        self._path = os.path.join(self._directory, "fork.sock")
        self._imports, self._logger, self._command = imports, logger, command
        self._stdout, self._stderr = stdout, stderr
        self._ready = anyio.Event()
        self._first_settled = anyio.Event()  # the first server said ready or exited
        self._process: anyio.abc.Process | None = None
        self._closing = False
        self._ended = anyio.Event()  # run() returned

    @property
    def socket(self) -> str | None:
        alive = self._process is not None and self._process.returncode is None
        return self._path if alive and self._ready.is_set() else None

    async def wait_ready(self, seconds: float) -> bool:
        """Wait up to `seconds` for the first server to say ready (or exit); whether it is ready now."""
        with anyio.move_on_after(seconds):
            await self._first_settled.wait()
        return self.socket is not None

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            self._ended.set()

    async def _serve(self) -> None:
        pause = FIRST_PAUSE
        while not self._closing:
            pid, code, was_ready = await self._run_once()
            if self._stopped():
                return
            self._logger.warning(
                "The fork server (pid %s) exited %s; slots spawn their own interpreters until it is back in %.0f s.",
                pid,
                code,
                pause,
            )
            await anyio.sleep(pause)
            pause = FIRST_PAUSE if was_ready else min(pause * 2, LONGEST_PAUSE)

    async def _run_once(self) -> tuple[int, int, bool]:
        """Start the server, relay its output until it exits; its pid, exit code and whether it was ready."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
        self._process = process = await anyio.open_process(
            [*self._command, self._path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, IMPORTS_ENV: self._imports},
        )
        started = time.monotonic()

        def said_ready() -> None:
            self._logger.info(
                "Fork server (pid %s) ready in %.1f s: warm interpreters are forked from it.",
                process.pid,
                time.monotonic() - started,
            )
            self._ready.set()
            self._first_settled.set()

        assert process.stdout is not None and process.stderr is not None
        async with anyio.create_task_group() as relays:
            relays.start_soon(relay_stdout, process.stdout, self._stdout or sys.stdout, said_ready)
            relays.start_soon(relay, process.stderr, self._stderr or sys.stderr)
        code = await process.wait()
        self._first_settled.set()
        with anyio.CancelScope(shield=True):
            await process.aclose()
        was_ready, self._ready = self._ready.is_set(), anyio.Event()
        return process.pid, code, was_ready

    def _stopped(self) -> bool:  # (a method: `stop()` sets it while `run()` awaits)
        return self._closing

    async def stop(self, seconds: float = 5) -> None:
        """End of input: the server takes no more requests and exits once its running copies have ended.

        Waits up to `seconds` for that (runs still going keep it, and it outlives the worker until they end).
        """
        self._closing = True
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await self._process.stdin.aclose()
            with anyio.move_on_after(seconds):
                await self._ended.wait()
        shutil.rmtree(self._directory, ignore_errors=True)
