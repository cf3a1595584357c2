"""The warm worker: Prefect's process worker, with each flow run handed to an interpreter that has already imported it.

`prefect worker start --pool <pool> --type lakeops-warm`. It is the process worker in everything but
how a run's process comes to be: the same job configuration and variables (`command`, `env`,
`working_dir`, `stream_output`, plus lakeops's `memory`), the same executor from Prefect's runner
(states, Crashed with the exit code, cancellation through the control channel and then the process,
crashed hooks), the same concurrency limits. Where the process worker starts `python -m
prefect.engine`, this one takes an idle slot from its pool (`workers.pool`) and hands it the run's
environment; the slot's interpreter runs the engine's `__main__` exactly as that command would, and
exits. The interpreters are forked from the worker's fork server (`workers.zygote`), which imported
everything once. A deployment that sets its own `command` is started cold, as the process worker
does, and so is a run that comes when every idle interpreter is still importing (a cold start is
sooner then: while the fork server itself warms up, after the worker starts).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from prefect.flows import load_flow_from_flow_run
from prefect.runner._flow_run_executor import FlowRunExecutionResult, FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle
from prefect.settings import get_current_settings
from prefect.utilities.processutils import sanitize_subprocess_env
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from lakeops.datasets.names import WARM_WORKER_TYPE
from workers.fork_server import ZYGOTE_COMMAND
from workers.pool import WarmPool, WarmPoolSettings

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun
    from prefect.runner._control_channel import ControlChannel

WORKER_TYPE = WARM_WORKER_TYPE
COLD_COMMAND = shlex.join([sys.executable, "-m", "lakeops.memlimit", sys.executable, "-m", "prefect.engine"])


class WarmStarter:
    """Prefect's process-starter contract (`start()` signals the handle, then blocks until exit), on a warm slot."""

    def __init__(
        self, pool: WarmPool, env: dict[str, str | None], cwd: Path, control_channel: ControlChannel, logger: Any
    ) -> None:
        self._pool = pool
        self._env = env
        self._cwd = cwd
        self._control_channel = control_channel
        self._logger = logger  # the flow run's

    def environment(self, flow_run: FlowRun, control: dict[str, str]) -> dict[str, str]:
        """What `EngineCommandStarter` gives `python -m prefect.engine`: our env, the job's, the settings, the run."""
        env: dict[str, str | None] = {
            **os.environ,
            **self._env,
            **get_current_settings().to_environment_variables(exclude_unset=True),
            "PREFECT__FLOW_RUN_ID": str(flow_run.id),
            "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
            **control,
            "PREFECT__DEPLOYMENT_NAME": self._env.get("PREFECT__DEPLOYMENT_NAME"),
        }
        return {key: value for key, value in sanitize_subprocess_env(env).items() if value is not None}

    async def start(
        self, flow_run: FlowRun, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        control: dict[str, str] = {}
        with contextlib.suppress(RuntimeError):  # no loopback listener: cancellation falls back to kill-only
            port, token = self._control_channel.register(flow_run.id)
            control = {"PREFECT__CONTROL_PORT": str(port), "PREFECT__CONTROL_TOKEN": token}
        try:
            slot = await self._pool.hand_off(self.environment(flow_run, control), str(self._cwd))
        except BaseException:
            if control:
                self._control_channel.unregister(flow_run.id)
            raise
        self._logger.info("Handed to %s.", slot.describe())
        task_status.started(ProcessHandle(slot.process))
        await slot.process.wait()


class WarmWorker(ProcessWorker):
    type = WORKER_TYPE
    _description = (
        "Executes flow runs as subprocesses, like the process worker, in interpreters forked ready from one that "
        "has already imported Prefect, the data libraries and the flow modules: nothing is imported between a "
        "run's pickup and its start."
    )
    _display_name = "lakeops warm process"
    _documentation_url = "https://github.com/lakeops/lakeops#warm-starts"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = WarmPoolSettings()
        self.pool = WarmPool(settings, self._logger, fork_server=ZYGOTE_COMMAND if settings.fork else None)

    async def setup(self) -> None:
        await super().setup()
        await self._exit_stack.enter_async_context(self.pool)
        settings = self.pool.settings
        how = "forked from one fork server" if settings.fork else "each importing on its own"
        self._logger.info("Keeping %d warm interpreters idle, %s.", settings.interpreters, how)

    async def run(
        self,
        flow_run: FlowRun,
        configuration: ProcessJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ProcessWorkerResult:
        if configuration._command_configured:  # the deployment's own command: started cold
            return await super().run(flow_run, configuration, task_status)
        if not self.pool.has_ready:
            # Every idle interpreter is still importing: a cold start (which imports only what the flow
            # needs) is sooner than the rest of a warm-up. Through the memory supervisor, as on the process pool.
            self.get_flow_run_logger(flow_run).info(
                "No warm interpreter ready (%d warming): started cold.", len(self.pool.idle)
            )
            configuration.command = COLD_COMMAND
            configuration._command_configured = True
            return await super().run(flow_run, configuration, task_status)
        task_status = task_status or anyio.TASK_STATUS_IGNORED
        workspace = (
            contextlib.nullcontext(configuration.working_dir)
            if configuration.working_dir
            else tempfile.TemporaryDirectory(suffix="prefect")
        )
        execution: FlowRunExecutionResult | None = None
        with workspace as working_dir, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            async with FlowRunExecutorContext() as context:
                starter = WarmStarter(
                    self.pool,
                    configuration.env,
                    Path(working_dir).resolve(),
                    context.control_channel,
                    self.get_flow_run_logger(flow_run),
                )
                executor = context.create_executor(
                    flow_run, starter, resolve_flow=load_flow_from_flow_run, propose_submitting=False
                )

                async def execute(*, task_status: anyio.abc.TaskStatus[ProcessHandle]) -> None:
                    nonlocal execution
                    execution = await executor.submit(task_status=task_status)

                async with anyio.create_task_group() as group:
                    handle = await group.start(execute)
                    if handle.pid is None:
                        raise RuntimeError("Flow run process has no PID")
                    task_status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError("Failed to start flow run process.")
        return ProcessWorkerResult(status_code=execution.status_code, identifier=str(execution.handle.pid))
