"""A warm interpreter: imports what flow runs need, waits for one flow run, runs it as `python -m prefect.engine` would.

Started by the warm worker's slot supervisor (`lakeops.healing.slot`) long before a run exists, or
forked ready-made by the fork server (`workers.zygote`), which warmed up once for all of them. It
imports Prefect, pandas, pyarrow, pyiceberg, great_expectations and every flow module, says so with
one line on stdout, and blocks on stdin. The hand-off is one JSON line: the flow run's environment
and working directory. The interpreter makes that environment its own, refreshes Prefect's settings
and logging from it (both were read at import), and runs the engine's `__main__` in this process:
the same code path, states, logs and signal handling as a cold start. Then it exits; an interpreter
runs exactly one flow run. End of input before a hand-off (the worker stopped): exit 0, nothing run.
"""

import importlib
import json
import os
import pkgutil
import resource
import runpy
import sys
import time
import warnings

from workers.protocol import IMPORTS_ENV, READY_LINE

NICE_WHILE_WARMING = 10
# Beyond Prefect and the flow modules (which import pandas, pyarrow and pyiceberg themselves).
LIBRARIES = ("pandas", "pyarrow", "pyarrow.parquet", "pyiceberg.table", "great_expectations")


def warm_up(packages: list[str]) -> float:
    """Import Prefect's engine, the libraries and every module of `packages`, build the GX context; seconds taken."""
    started = time.monotonic()
    import prefect.flow_engine  # noqa: F401  (what the engine's __main__ imports)

    for name in LIBRARIES:
        importlib.import_module(name)
    for name in packages:
        package = importlib.import_module(name)
        for module in pkgutil.iter_modules(getattr(package, "__path__", []), f"{name}."):
            importlib.import_module(module.name)
    from lakeops.build.validation import gx_context

    gx_context()
    return time.monotonic() - started


def lower_priority() -> int | None:
    """Warm up niced, so a running flow keeps the CPU, where the priority can be given back (root, RLIMIT_NICE).

    Returns the priority to give back, None when left as it was.
    """
    before = os.getpriority(os.PRIO_PROCESS, 0)
    ceiling = 20 - resource.getrlimit(resource.RLIMIT_NICE)[0]  # the lowest nice value we may set
    if os.geteuid() != 0 and ceiling > before:
        return None
    os.setpriority(os.PRIO_PROCESS, 0, before + NICE_WHILE_WARMING)
    return before


def restore_priority(before: int | None) -> None:
    """Every thread back to the priority it had (Linux nices threads one by one)."""
    if before is None:
        return
    for thread in os.listdir("/proc/self/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(thread), before)
        except OSError:  # the thread ended meanwhile
            pass


def adopt(environment: dict[str, str], cwd: str | None) -> None:
    """Make the flow run's environment and working directory this process's; re-read Prefect's settings."""
    import prefect.context
    from prefect.logging.configuration import setup_logging

    os.environ.clear()
    os.environ.update(environment)
    if cwd:
        os.chdir(cwd)
    prefect.context.refresh_global_settings_context()
    setup_logging(incremental=False)


def packages() -> list[str]:
    """The packages whose every module is imported warm (LAKEOPS_WARM_IMPORTS, default `flows`)."""
    return [name for name in os.environ.get(IMPORTS_ENV, "flows").split(",") if name]


def main() -> int:
    priority = lower_priority()
    return serve_one(priority, warm_up(packages()))


def serve_one(priority: int | None, seconds: float) -> int:
    """Say ready, wait for one run's hand-off on stdin and run it; 0 at end of input (nothing to run)."""
    print(f"{READY_LINE} in {seconds:.1f} s", flush=True)
    line = sys.stdin.readline()
    if not line:
        return 0
    restore_priority(priority)
    handoff = json.loads(line)
    adopt(handoff["env"], handoff.get("cwd"))
    sys.argv = [sys.argv[0]]
    with warnings.catch_warnings():  # runpy's note that Prefect's package (not the engine) is imported already
        warnings.filterwarnings(
            "ignore", message=".*found in sys.modules after import of package", category=RuntimeWarning
        )
        runpy.run_module("prefect.engine", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
