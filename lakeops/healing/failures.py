"""One failure classifier and one retry policy per class, for every retry layer.

Prefect tasks (`flows.common.io_task`) and in-process loops (`retrying`) both read `POLICIES`;
no other module writes a retry count, a delay or a jitter factor.
"""

import enum
import errno
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from lakeops.errors import TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


class FailureClass(enum.Enum):
    TRANSIENT = "transient"
    RESOURCE = "resource"
    DATA_LOGIC = "data_logic"
    UNKNOWN = "unknown"


# Matched by class name along the MRO so the core needs none of these libraries imported.
_TRANSIENT_NAMES = {
    "TimeoutError",  # also botocore ReadTimeoutError, urllib3/requests timeouts
    "ConnectionError",  # also botocore EndpointConnectionError, ConnectTimeoutError
    "TransportError",  # httpx: connect/read/write errors and timeouts
    "TimeoutException",
    "CommitStateUnknownException",
    "OperationalError",  # sqlalchemy/sqlite: database is locked, connection dropped
    "ServiceUnavailableError",
}
# A compare-and-swap commit that lost to a concurrent writer: the catalog refused the swap
# (CommitFailedException), or pyiceberg's validation of a retried commit found the concurrent
# writer's files (ValidationException, named with its module: AWS services call a bad request so).
_COMMIT_CONFLICT_NAMES = {"CommitFailedException", "pyiceberg.exceptions.ValidationException"}
# The SQL catalog reports two writers taking the same sequence number as a plain ValueError.
_SEQUENCE_RACE = "older than last sequence number"
# Throttling by class name (boto3 modelled errors) or by error code (botocore ClientError).
_THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
}
_TRANSIENT_ERRNOS = {errno.ECONNRESET, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPIPE, errno.EAGAIN}
_TRANSIENT_STATUS = {408, 429}  # plus every 5xx
_DATA_LOGIC_NAMES = {
    "MalformedBatch",  # and SchemaDrifted, its subclass
    "EmptyWindow",
    "SnapshotNotFound",
    "TableNotFound",
    "RefNotFound",
    "ValidationFailed",
    "UnsafeRollback",
    "MainMoved",
    "SwitchFailed",
    "NothingToRollBack",
    # unparseable input, when it escapes before ingest wraps it in MalformedBatch
    "ArrowInvalid",
    "ParserError",
    "EmptyDataError",
    "JSONDecodeError",
    "UnicodeError",
}
# A process killed by the kernel's OOM killer (SIGKILL): 137 from a shell or container, -9 from Popen.
OOM_EXIT_CODES = {137, -9}


def classify(exc: BaseException) -> FailureClass:
    """Decide what kind of failure `exc` is; unknown failures are never treated as transient."""
    names = _names(exc)
    if isinstance(exc, MemoryError) or getattr(exc, "returncode", None) in OOM_EXIT_CODES:
        return FailureClass.RESOURCE
    if names & _DATA_LOGIC_NAMES:
        return FailureClass.DATA_LOGIC
    if isinstance(exc, TransientError) or names & _TRANSIENT_NAMES or is_commit_conflict(exc) or _throttled(exc):
        return FailureClass.TRANSIENT
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return FailureClass.TRANSIENT
    status = _http_status(exc)
    if status is not None and (status in _TRANSIENT_STATUS or status >= 500):
        return FailureClass.TRANSIENT
    return FailureClass.UNKNOWN


def classify_exit(code: int | None) -> FailureClass:
    """Decide what a process's exit code says: killed out of memory is RESOURCE, anything else UNKNOWN."""
    return FailureClass.RESOURCE if code in OOM_EXIT_CODES else FailureClass.UNKNOWN


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is FailureClass.TRANSIENT


def is_commit_conflict(exc: BaseException) -> bool:
    """A compare-and-swap commit lost to a concurrent writer: refresh the metadata, plan again, try again."""
    return bool(_names(exc) & _COMMIT_CONFLICT_NAMES) or (isinstance(exc, ValueError) and _SEQUENCE_RACE in str(exc))


def _names(exc: BaseException) -> set[str]:
    """The class names along the MRO, bare and qualified by module."""
    mro = type(exc).__mro__
    return {cls.__name__ for cls in mro} | {f"{cls.__module__}.{cls.__name__}" for cls in mro}


def _throttled(exc: BaseException) -> bool:
    names = _names(exc)
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return bool(names & _THROTTLING) or code in _THROTTLING


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    else:
        status = getattr(response, "status_code", getattr(exc, "status_code", None))
    return status if isinstance(status, int) else None


@dataclass(frozen=True)
class RetryPolicy:
    """How many times a failure is tried again, and how long to wait: base * 2**n, capped, up to `jitter` more.

    Prefect's `retry_jitter_factor` takes the same factor: the same upper bound, drawn around the delay.
    """

    retries: int
    base_seconds: float = 0.0
    jitter: float = 0.0
    cap_seconds: float | None = None

    def delays(self) -> list[float]:
        """The delay before each retry, without jitter (Prefect adds its own)."""
        return [self._backoff(n) for n in range(self.retries)]

    def delay(self, retry: int) -> float:
        """The wait before retry `retry` (from 0) with up to `jitter` of random extra, for loops outside Prefect."""
        return self._backoff(retry) * (1 + random.uniform(0, self.jitter))

    def _backoff(self, retry: int) -> float:
        doubled: float = self.base_seconds * 2**retry  # int ** int is typed Any (a negative exponent gives a float)
        return doubled if self.cap_seconds is None else min(doubled, self.cap_seconds)


POLICIES = {
    FailureClass.TRANSIENT: RetryPolicy(retries=4, base_seconds=0.5, jitter=0.5),  # 0.5 1 2 4 s, +0-50%
    FailureClass.RESOURCE: RetryPolicy(retries=0),  # re-run by the flow-level healer with more memory
    FailureClass.DATA_LOGIC: RetryPolicy(retries=0),  # the same input fails the same way: alert a human
    FailureClass.UNKNOWN: RetryPolicy(retries=0),  # treated as data logic: alert, do not loop
}
# The in-process layer for a lost compare-and-swap: the winner has already committed, so the
# retry needs fresh metadata and a new plan, not a recovered service; the jittered wait only keeps
# losers from colliding again. Some writer wins every race, but a given one can lose several in a
# row while others keep committing: the budget is long (about 15 s of waits in all), each wait short.
COMMIT_CONFLICT = RetryPolicy(retries=20, base_seconds=0.05, jitter=1.0, cap_seconds=1.0)  # 50 ms .. 1 s
TASK_RETRIES = max(policy.retries for policy in POLICIES.values())


def policy_for(exc: BaseException) -> RetryPolicy:
    return POLICIES[classify(exc)]


def should_retry(exc: BaseException, retries_done: int) -> bool:
    """Whether the budget of `exc`'s class allows one more retry after `retries_done`."""
    return retries_done < policy_for(exc).retries


def retrying(
    fn: Callable[[], T],
    policy: RetryPolicy | None = None,
    retry_if: Callable[[BaseException], bool] = is_transient,
    on_retry: Callable[[BaseException], object] | None = None,
    what: str = "call",
) -> T:
    """Call `fn` until it returns; raises its last failure once that failure may not be retried.

    A failure is retried while `retry_if` holds and the budget of `policy` (default: the policy of
    the failure's class) lasts, after that policy's jittered delay; `on_retry(error)` runs after the
    delay, before the next attempt (refresh metadata there). `what` names the work in the log.
    """
    retries = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            chosen = policy or policy_for(exc)
            if not retry_if(exc) or retries >= chosen.retries:
                raise
            delay = chosen.delay(retries)
            retries += 1
            log.info("%s failed (%r), retry %s/%s in %.2f s", what, exc, retries, chosen.retries, delay)
            time.sleep(delay)
            if on_retry is not None:
                on_retry(exc)


def failure_in(state: Any) -> BaseException | None:
    """The exception an orchestrator state failed with, or None (duck-typed: state.result())."""
    result = getattr(state, "result", None)
    if result is None:
        return None
    try:
        exc = result(raise_on_failure=False)
    except Exception as unreadable:  # the failure's result could not be read back
        exc = unreadable
    return exc if isinstance(exc, BaseException) else None


def retry_condition_fn(task: object, task_run: object, state: object) -> bool:
    """Orchestrator hook (task, task_run, state) -> retry? Within the failure class's budget only."""
    exc = failure_in(state)
    run_count = getattr(task_run, "run_count", None)
    return exc is not None and should_retry(exc, (run_count or 1) - 1)


@dataclass(frozen=True)
class Recovery:
    """A task that succeeded after retries: what it survived (feeds the reliability metrics)."""

    task: str
    attempts: int
    survived: tuple[str, ...]  # exception type names, in order
    classes: tuple[FailureClass, ...]

    @property
    def retries(self) -> int:
        return self.attempts - 1

    def payload(self) -> dict[str, object]:
        return {
            "task": self.task,
            "attempts": self.attempts,
            "retries": self.retries,
            "survived": list(self.survived),
            "classes": [c.value for c in self.classes],
        }


def recovery(task: str, attempts: int, survived: list[BaseException]) -> Recovery | None:
    """The recovery of a run that completed on attempt `attempts`, or None when it needed no retry."""
    if attempts <= 1:
        return None
    return Recovery(task, attempts, tuple(type(e).__name__ for e in survived), tuple(classify(e) for e in survived))
