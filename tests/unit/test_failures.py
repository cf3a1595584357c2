"""lakeops.failures: one classifier for every retry layer, and the backoff policy."""

import errno
from dataclasses import dataclass

import httpx
import pytest
from pyiceberg.exceptions import CommitFailedException

from lakeops import failures
from lakeops.errors import EmptyWindow, MalformedBatch, SignalNotDelivered, SnapshotNotFound
from lakeops.failures import FailureClass


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:4200/api/events")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


CASES = [
    (TimeoutError("read timed out"), FailureClass.TRANSIENT),
    (ConnectionResetError("peer reset"), FailureClass.TRANSIENT),
    (OSError(errno.ECONNREFUSED, "Connection refused"), FailureClass.TRANSIENT),
    (CommitFailedException("lost the race"), FailureClass.TRANSIENT),
    (http_error(503), FailureClass.TRANSIENT),
    (http_error(429), FailureClass.TRANSIENT),
    (httpx.ConnectError("refused"), FailureClass.TRANSIENT),
    (SignalNotDelivered("no ack"), FailureClass.TRANSIENT),
    (http_error(404), FailureClass.UNKNOWN),
    (MemoryError(), FailureClass.RESOURCE),
    (MalformedBatch("2013-01-02.csv", "bad value", "dep_delay", 4), FailureClass.DATA_LOGIC),
    (EmptyWindow("no rows"), FailureClass.DATA_LOGIC),
    (SnapshotNotFound("no snapshot 1"), FailureClass.DATA_LOGIC),
    (ValueError("bad argument"), FailureClass.UNKNOWN),
    (KeyError("dep_delay"), FailureClass.UNKNOWN),
    (OSError(errno.ENOENT, "No such file"), FailureClass.UNKNOWN),
]


@pytest.mark.parametrize(("exc", "expected"), CASES, ids=[f"{type(e).__name__}-{x.value}" for e, x in CASES])
def test_classify(exc, expected):
    assert failures.classify(exc) is expected
    assert failures.is_transient(exc) is (expected is FailureClass.TRANSIENT)


@dataclass
class FakeState:
    """The part of an orchestrator State the hook uses: result(raise_on_failure=False)."""

    outcome: object

    def result(self, raise_on_failure: bool = True) -> object:
        assert raise_on_failure is False, "the hook must not make the state raise"
        return self.outcome


class UnreadableState:
    def __init__(self, error: BaseException):
        self.error = error

    def result(self, raise_on_failure: bool = True) -> object:
        raise self.error


@pytest.mark.parametrize(("exc", "expected"), CASES, ids=[f"{type(e).__name__}-{x.value}" for e, x in CASES])
def test_retry_condition_retries_only_transient_failures(exc, expected):
    assert failures.retry_condition_fn(None, None, FakeState(exc)) is (expected is FailureClass.TRANSIENT)


@pytest.mark.parametrize(
    "state",
    [object(), FakeState(None), FakeState("a value, not an error")],
    ids=["no result", "no exception", "plain value"],
)
def test_retry_condition_without_an_exception_does_not_retry(state):
    assert failures.retry_condition_fn(None, None, state) is False


@pytest.mark.parametrize(("exc", "expected"), [(TimeoutError(), True), (ValueError(), False)])
def test_retry_condition_classifies_a_result_that_cannot_be_read(exc, expected):
    assert failures.retry_condition_fn(None, None, UnreadableState(exc)) is expected


@pytest.mark.parametrize(("retries", "base"), [(1, 0.5), (4, 0.5), (6, 2.0)])
def test_backoff_delays_double_from_the_base(retries, base):
    delays = failures.backoff_delays(retries, base)

    assert len(delays) == retries
    assert delays[0] == base
    assert all(later == 2 * earlier for earlier, later in zip(delays, delays[1:], strict=False))


def test_default_backoff_is_the_io_policy():
    delays = failures.backoff_delays()

    assert len(delays) == failures.IO_RETRIES
    assert delays[0] == failures.IO_BACKOFF_BASE_SECONDS
    assert delays == sorted(delays)


def test_no_retries_means_no_delays():
    assert failures.backoff_delays(0) == []


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0])
def test_jitter_stays_within_the_factor(factor):
    delays = failures.backoff_delays(5, 0.5)

    for _ in range(200):
        jittered = list(failures.jittered(delays, factor))
        assert len(jittered) == len(delays)
        for delay, late in zip(delays, jittered, strict=True):
            assert delay <= late <= delay * (1 + factor)


def test_jitter_actually_varies():
    drawn = {next(failures.jittered([1.0], 0.5)) for _ in range(50)}

    assert len(drawn) > 1
