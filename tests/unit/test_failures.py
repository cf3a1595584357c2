"""lakeops.failures: one classifier for every retry layer, one policy per class, one in-process loop."""

import errno
import json
import subprocess
from dataclasses import dataclass

import httpx
import pandas as pd
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException, ValidationException
from sqlalchemy.exc import OperationalError

from lakeops.errors import (
    EmptyWindow,
    MainMoved,
    MalformedBatch,
    NothingToRollBack,
    RefNotFound,
    SchemaDrifted,
    SignalNotDelivered,
    SnapshotNotFound,
    SwitchFailed,
    TableNotFound,
    UnsafeRollback,
    ValidationFailed,
)
from lakeops.healing import failures
from lakeops.healing.failures import COMMIT_CONFLICT, POLICIES, FailureClass, RetryPolicy
from lakeops.ingest.drift import REMOVED, Change, SchemaDrift


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:4200/api/events")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


def aws_error(code: str, status: int = 400) -> ClientError:
    """What botocore raises for an error response (modelled errors subclass it under the code's name)."""
    response = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


def modelled_aws_error(code: str) -> ClientError:
    return type(code, (ClientError,), {})({"Error": {"Code": code}}, "Query")


SEQUENCE_RACE = ValueError("Cannot add snapshot with sequence number 7 older than last sequence number 7")
# pyiceberg's validation of a retried commit, when a concurrent writer added files the filter selects.
ADDED_FILES = ValidationException("Added data files were found matching the filter for snapshots {42}!")
DRIFT = SchemaDrift((Change(REMOVED, "origin", "string", None, "column missing from the header", line=1),))

# The README's table, one list per row.
TRANSIENT = [
    TimeoutError("read timed out"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    OSError(errno.ECONNREFUSED, "Connection refused"),
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:9000"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:9000"),
    http_error(408),
    http_error(429),
    http_error(500),
    http_error(503),
    aws_error("ThrottlingException"),
    aws_error("SlowDown", 503),
    aws_error("RequestLimitExceeded"),
    aws_error("InternalError", 500),
    modelled_aws_error("ProvisionedThroughputExceededException"),
    CommitFailedException("Requirement failed: branch main has changed"),
    SEQUENCE_RACE,
    ADDED_FILES,
    ValidationException("Data files were concurrently deleted: ['a.parquet']"),
    CommitStateUnknownException("gateway timeout"),
    OperationalError("INSERT ...", {}, Exception("database is locked")),
    SignalNotDelivered("no ack"),
]
RESOURCE = [MemoryError(), subprocess.CalledProcessError(137, "lakeops replay"), subprocess.CalledProcessError(-9, "x")]
DATA_LOGIC = [
    MalformedBatch("2013-01-02.csv", "bad value", "dep_delay", 4),
    SchemaDrifted("2013-01-02.csv", DRIFT),
    EmptyWindow("no rows"),
    ValidationFailed("2 of 10 checks failed"),
    SnapshotNotFound("no snapshot 1"),
    RefNotFound("no tag x"),
    TableNotFound("silver.flights"),
    UnsafeRollback("input corrected since"),
    MainMoved("main is not at 5"),
    SwitchFailed("gold failed, silver switched back"),
    NothingToRollBack("no live release"),
    pa.ArrowInvalid("Could not convert 'abc' with type str: tried to convert to double"),
    pd.errors.ParserError("Error tokenizing data"),
    pd.errors.EmptyDataError("No columns to parse from file"),
    json.JSONDecodeError("Expecting value", "{", 1),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
]
UNKNOWN = [
    http_error(404),
    aws_error("AccessDenied", 403),
    modelled_aws_error("ValidationException"),  # an AWS service's bad request: not pyiceberg's conflict
    ValueError("bad argument"),
    KeyError("dep_delay"),
    RuntimeError("unexpected"),
    OSError(errno.ENOENT, "No such file"),
    subprocess.CalledProcessError(1, "lakeops replay"),
]


def ids(cases: list[BaseException]) -> list[str]:
    return [f"{type(e).__name__}-{i}" for i, e in enumerate(cases)]


@pytest.mark.parametrize("exc", TRANSIENT, ids=ids(TRANSIENT))
def test_transient_failures_are_retried_with_backoff(exc):
    assert failures.classify(exc) is FailureClass.TRANSIENT
    assert failures.is_transient(exc)
    assert failures.policy_for(exc) == RetryPolicy(retries=4, base_seconds=0.5, jitter=0.5)


@pytest.mark.parametrize("exc", RESOURCE, ids=ids(RESOURCE))
def test_resource_failures_are_not_retried_by_the_task(exc):
    assert failures.classify(exc) is FailureClass.RESOURCE
    assert failures.policy_for(exc).retries == 0


@pytest.mark.parametrize("exc", DATA_LOGIC, ids=ids(DATA_LOGIC))
def test_data_logic_failures_are_never_retried(exc):
    assert failures.classify(exc) is FailureClass.DATA_LOGIC
    assert failures.policy_for(exc).retries == 0


@pytest.mark.parametrize("exc", UNKNOWN, ids=ids(UNKNOWN))
def test_unknown_failures_are_treated_as_data_logic(exc):
    assert failures.classify(exc) is FailureClass.UNKNOWN
    assert failures.policy_for(exc).retries == 0


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (137, FailureClass.RESOURCE),
        (-9, FailureClass.RESOURCE),
        (1, FailureClass.UNKNOWN),
        (None, FailureClass.UNKNOWN),
    ],
)
def test_exit_codes(code, expected):
    assert failures.classify_exit(code) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (CommitFailedException("lost"), True),
        (SEQUENCE_RACE, True),
        (ADDED_FILES, True),
        (ValidationException("Missing required files to delete: a.parquet"), True),
        (modelled_aws_error("ValidationException"), False),
        (ValueError("bad argument"), False),
        (TimeoutError(), False),
        (CommitStateUnknownException("may have committed"), False),  # retrying blindly could commit twice
    ],
)
def test_commit_conflicts(exc, expected):
    assert failures.is_commit_conflict(exc) is expected


# --- the policies -------------------------------------------------------------------------------


def test_only_transient_failures_have_a_task_budget():
    assert {c for c, p in POLICIES.items() if p.retries} == {FailureClass.TRANSIENT}
    assert failures.TASK_RETRIES == POLICIES[FailureClass.TRANSIENT].retries == 4


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (POLICIES[FailureClass.TRANSIENT], [0.5, 1, 2, 4]),
        (COMMIT_CONFLICT, [0.05, 0.1, 0.2, 0.4, 0.8] + [1.0] * 15),
        (RetryPolicy(5, 1.0, cap_seconds=3.0), [1, 2, 3, 3, 3]),
        (RetryPolicy(0), []),
    ],
)
def test_delays_double_from_the_base_up_to_the_cap(policy, expected):
    assert policy.delays() == pytest.approx(expected)


def test_a_lost_compare_and_swap_has_a_long_budget_of_short_waits():
    """Some writer wins every race, but one writer can lose many in a row while others keep committing."""
    assert COMMIT_CONFLICT.retries >= 20
    assert max(COMMIT_CONFLICT.delays()) <= 1.0
    assert 10 <= sum(COMMIT_CONFLICT.delays()) <= 30


@pytest.mark.parametrize(
    "policy", [POLICIES[FailureClass.TRANSIENT], COMMIT_CONFLICT, RetryPolicy(3, 1.0, 1.0), RetryPolicy(4, 1, 0.5, 2.0)]
)
def test_jitter_adds_at_most_its_factor(policy):
    for retry, delay in enumerate(policy.delays()):
        drawn = [policy.delay(retry) for _ in range(200)]
        assert all(delay <= d <= delay * (1 + policy.jitter) for d in drawn)
        assert len(set(drawn)) > 1


# --- the Prefect hook ---------------------------------------------------------------------------


@dataclass
class FakeState:
    """The part of an orchestrator State the hook uses: result(raise_on_failure=False)."""

    outcome: object

    def result(self, raise_on_failure: bool = True) -> object:
        assert raise_on_failure is False, "the hook must not make the state raise"
        return self.outcome


@dataclass
class FakeTaskRun:
    run_count: int


class UnreadableState:
    def __init__(self, error: BaseException):
        self.error = error

    def result(self, raise_on_failure: bool = True) -> object:
        raise self.error


ALL = [(e, True) for e in TRANSIENT] + [(e, False) for e in RESOURCE + DATA_LOGIC + UNKNOWN]


@pytest.mark.parametrize(("exc", "retried"), ALL, ids=ids([e for e, _ in ALL]))
def test_retry_condition_retries_only_transient_failures(exc, retried):
    assert failures.retry_condition_fn(None, FakeTaskRun(1), FakeState(exc)) is retried


@pytest.mark.parametrize(("run_count", "retried"), [(1, True), (4, True), (5, False), (9, False)])
def test_retry_condition_stops_when_the_class_budget_is_spent(run_count, retried):
    assert failures.retry_condition_fn(None, FakeTaskRun(run_count), FakeState(TimeoutError())) is retried


@pytest.mark.parametrize(
    "state",
    [object(), FakeState(None), FakeState("a value, not an error")],
    ids=["no result", "no exception", "plain value"],
)
def test_retry_condition_without_an_exception_does_not_retry(state):
    assert failures.retry_condition_fn(None, FakeTaskRun(1), state) is False


@pytest.mark.parametrize(("exc", "expected"), [(TimeoutError(), True), (ValueError(), False)])
def test_retry_condition_classifies_a_result_that_cannot_be_read(exc, expected):
    assert failures.retry_condition_fn(None, None, UnreadableState(exc)) is expected


# --- the in-process loop ------------------------------------------------------------------------


class Flaky:
    """A call that raises its planned failures in turn, then returns "done"."""

    def __init__(self, *planned: BaseException):
        self.planned, self.calls = list(planned), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.planned:
            raise self.planned.pop(0)
        return "done"


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays `retrying` waited, without waiting."""
    delays: list[float] = []
    monkeypatch.setattr(failures.time, "sleep", delays.append)
    return delays


def test_retrying_recovers_from_transient_failures_with_backoff(slept):
    call = Flaky(TimeoutError(), http_error(503), CommitFailedException("lost"))

    assert failures.retrying(call) == "done"

    assert call.calls == 4
    for delay, base in zip(slept, [0.5, 1, 2], strict=True):
        assert base <= delay <= base * 1.5


def test_retrying_raises_the_last_failure_when_the_budget_is_spent(slept):
    call = Flaky(*[TimeoutError(f"attempt {n}") for n in range(1, 7)])

    with pytest.raises(TimeoutError, match="attempt 5"):
        failures.retrying(call)

    assert call.calls == 5
    assert len(slept) == 4


NOT_TRANSIENT = DATA_LOGIC[:2] + RESOURCE[:1] + UNKNOWN[:3]


@pytest.mark.parametrize("exc", NOT_TRANSIENT, ids=ids(NOT_TRANSIENT))
def test_retrying_never_retries_what_is_not_transient(slept, exc):
    call = Flaky(exc)

    with pytest.raises(type(exc)):
        failures.retrying(call)

    assert call.calls == 1
    assert slept == []


def test_retrying_with_a_policy_and_a_condition_retries_only_those_failures(slept):
    refreshed: list[BaseException] = []
    conflicts = Flaky(SEQUENCE_RACE, CommitFailedException("lost"), ADDED_FILES)

    done = failures.retrying(conflicts, COMMIT_CONFLICT, failures.is_commit_conflict, on_retry=refreshed.append)

    assert done == "done" and conflicts.calls == 4
    assert refreshed[0] is SEQUENCE_RACE and isinstance(refreshed[1], CommitFailedException)
    assert refreshed[2] is ADDED_FILES
    assert 0.05 <= slept[0] <= 0.1 and 0.1 <= slept[1] <= 0.2 and 0.2 <= slept[2] <= 0.4
    with pytest.raises(TimeoutError):  # transient, but not a conflict: left to the task layer
        failures.retrying(Flaky(TimeoutError()), COMMIT_CONFLICT, failures.is_commit_conflict)


def test_retrying_a_conflict_raises_it_once_the_commit_budget_is_spent(slept):
    lost = Flaky(*[CommitFailedException(f"lost {n}") for n in range(1, 23)])

    with pytest.raises(CommitFailedException, match="lost 21"):
        failures.retrying(lost, COMMIT_CONFLICT, failures.is_commit_conflict)

    assert lost.calls == 21 and len(slept) == 20
    assert max(slept) <= 2.0  # the 1 s cap, plus at most 100% jitter


# --- recoveries ---------------------------------------------------------------------------------


def test_a_run_that_needed_no_retry_is_no_recovery():
    assert failures.recovery("build", 1, []) is None


def test_a_recovery_says_what_it_survived():
    recovered = failures.recovery("build", 3, [TimeoutError(), CommitFailedException("lost")])

    assert recovered is not None
    assert recovered.payload() == {
        "task": "build",
        "attempts": 3,
        "retries": 2,
        "survived": ["TimeoutError", "CommitFailedException"],
        "classes": ["transient", "transient"],
    }
