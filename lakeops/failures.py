"""One failure classifier for every retry layer: what is worth trying again, and how soon."""

import enum
import errno
import random
from collections.abc import Iterator

from lakeops.errors import TransientError


class FailureClass(enum.Enum):
    TRANSIENT = "transient"
    RESOURCE = "resource"
    DATA_LOGIC = "data_logic"
    UNKNOWN = "unknown"


# Matched by class name along the MRO so the core needs none of these libraries imported.
_TRANSIENT_NAMES = {
    "TimeoutError",
    "ConnectionError",
    "TransportError",  # httpx: connect/read/write errors and timeouts
    "TimeoutException",
    "CommitFailedException",  # pyiceberg: optimistic commit lost a race
    "CommitStateUnknownException",
    "OperationalError",  # sqlalchemy/sqlite: database is locked, connection dropped
    "ServiceUnavailableError",
}
_TRANSIENT_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ETIMEDOUT,
    errno.EPIPE,
    errno.EAGAIN,
}
_DATA_LOGIC_NAMES = {
    "MalformedBatch",
    "EmptyWindow",
    "SnapshotNotFound",
    "TableNotFound",
    "RefNotFound",
    "ValidationFailed",
    "UnsafeRollback",
    "MainMoved",
    "SwitchFailed",
    "NothingToRollBack",
}


def classify(exc: BaseException) -> FailureClass:
    """Decide what kind of failure `exc` is; unknown failures are never treated as transient."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, MemoryError):
        return FailureClass.RESOURCE
    if names & _DATA_LOGIC_NAMES:
        return FailureClass.DATA_LOGIC
    if isinstance(exc, TransientError) or names & _TRANSIENT_NAMES:
        return FailureClass.TRANSIENT
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return FailureClass.TRANSIENT
    status = _http_status(exc)
    if status is not None and (status == 429 or status >= 500):
        return FailureClass.TRANSIENT
    return FailureClass.UNKNOWN


# A process killed by the kernel's OOM killer (SIGKILL): 137 from a shell or container, -9 from Popen.
OOM_EXIT_CODES = {137, -9}


def classify_exit(code: int | None) -> FailureClass:
    """Decide what a process's exit code says: killed out of memory is RESOURCE, anything else UNKNOWN."""
    return FailureClass.RESOURCE if code in OOM_EXIT_CODES else FailureClass.UNKNOWN


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is FailureClass.TRANSIENT


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def retry_condition_fn(task: object, task_run: object, state: object) -> bool:
    """Orchestrator hook (task, task_run, state) -> retry? Only transient failures are retried."""
    result = getattr(state, "result", None)
    if result is None:
        return False
    try:
        exc = result(raise_on_failure=False)
    except Exception as unreadable:  # the failure's result could not be read back
        exc = unreadable
    return isinstance(exc, BaseException) and is_transient(exc)


# The retry policy of every I/O task: exponential backoff from BASE seconds, with jitter.
IO_RETRIES = 4
IO_BACKOFF_BASE_SECONDS = 0.5
IO_JITTER_FACTOR = 0.5


def backoff_delays(retries: int = IO_RETRIES, base: float = IO_BACKOFF_BASE_SECONDS) -> list[float]:
    """Delays before each retry: base, 2*base, 4*base, ... (jitter is added by the runner)."""
    return [base * 2**attempt for attempt in range(retries)]


def jittered(delays: list[float], factor: float = IO_JITTER_FACTOR) -> Iterator[float]:
    """The delays with up to `factor` of random extra time each, for callers outside Prefect."""
    for delay in delays:
        yield delay * (1 + random.uniform(0, factor))
