"""Fault injection: real io_tasks on a local Prefect server, failures drawn from a seeded RNG.

Each attempt of a transient-only task fails with probability 10% (timeouts, connection resets,
HTTP 503 and 429, commit conflicts); data-logic, unknown and resource tasks fail on their first
attempt. Only the retry delays are zeroed; the budget, the condition and the recovery hook are
io_task's own, from `lakeops.failures`.
"""

import errno
import random
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.futures import wait
from prefect.runtime import task_run
from pyiceberg.exceptions import CommitFailedException

from flows.common import io_task
from lakeops.datasets.names import TASK_RECOVERED_EVENT
from lakeops.errors import MalformedBatch, ValidationFailed
from lakeops.healing.failures import TASK_RETRIES, FailureClass

pytestmark = pytest.mark.integration

SEED = 20130102
FAILURE_RATE = 0.10
TRANSIENT_TASKS = 1_000
NEVER_RETRIED_TASKS = {FailureClass.DATA_LOGIC: 40, FailureClass.UNKNOWN: 20, FailureClass.RESOURCE: 10}


def http_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("PUT", "http://127.0.0.1:9000/warehouse/data.parquet")
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=httpx.Response(status, request=request))


TRANSIENT: list[Callable[[], BaseException]] = [
    lambda: TimeoutError("read timed out"),
    lambda: ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    lambda: http_error(503),
    lambda: http_error(429),
    lambda: CommitFailedException("Requirement failed: branch main has changed"),
]
NEVER_RETRIED: dict[FailureClass, list[Callable[[], BaseException]]] = {
    FailureClass.DATA_LOGIC: [
        lambda: ValidationFailed("window 2013-01-02 failed 2 of 10 checks"),
        lambda: MalformedBatch("2013-01-02.csv", "not a number: 'abc'", "dep_delay", 4),
    ],
    FailureClass.UNKNOWN: [lambda: KeyError("dep_delay"), lambda: RuntimeError("unexpected")],
    FailureClass.RESOURCE: [MemoryError],
}

# What each task raises on attempts 1..n before it succeeds, and the run_count Prefect gave each attempt.
PLANS: dict[int, list[BaseException]] = {}
RUN_COUNTS: dict[int, list[int]] = {}


@io_task
def attempt(index: int) -> int:
    """Raise this attempt's planned failure, if any; succeed after the plan runs out."""
    run = task_run.run_count
    RUN_COUNTS[index].append(run)
    planned = PLANS[index]
    if run <= len(planned):
        raise planned[run - 1]
    return index


@flow(name="fault-injection")
def inject(count: int) -> list[bool]:
    fast = attempt.with_options(retry_delay_seconds=0)
    futures = [fast.submit(index) for index in range(count)]
    wait(futures)
    return [future.state.is_completed() for future in futures]


def draw_plans(rng: random.Random) -> tuple[list[list[BaseException]], dict[int, FailureClass]]:
    """One plan per task (shuffled), and the class of each task that must never be retried."""
    plans: list[tuple[FailureClass, list[BaseException]]] = []
    for _ in range(TRANSIENT_TASKS):
        failures: list[BaseException] = []
        while len(failures) <= TASK_RETRIES and rng.random() < FAILURE_RATE:
            failures.append(rng.choice(TRANSIENT)())
        plans.append((FailureClass.TRANSIENT, failures))
    for kind, count in NEVER_RETRIED_TASKS.items():
        plans += [(kind, [rng.choice(NEVER_RETRIED[kind])()]) for _ in range(count)]
    rng.shuffle(plans)
    never = {index: kind for index, (kind, _) in enumerate(plans) if kind is not FailureClass.TRANSIENT}
    return [failures for _, failures in plans], never


def recovered_events(expected: int, timeout: float = 30) -> list[dict]:
    """Every `lakeops.task.recovered` event the server holds, once it holds `expected` (or at timeout)."""
    body = {"filter": {"event": {"name": [TASK_RECOVERED_EVENT]}}, "limit": 50}
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            page = client.request("POST", "/events/filter", json=body).json()
            if page["total"] >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        events = page["events"]
        while page["next_page"]:
            page = httpx.get(page["next_page"]).json()
            events += page["events"]
    return events


def test_transient_failures_recover_and_data_logic_failures_run_once(prefect_server):
    plans, never = draw_plans(random.Random(SEED))
    PLANS.update(enumerate(plans))
    RUN_COUNTS.update((index, []) for index in range(len(plans)))

    started = time.perf_counter()
    completed = inject(len(plans))
    elapsed = time.perf_counter() - started

    transient = [index for index in range(len(plans)) if index not in never]
    injected = sum(min(len(plans[i]), TASK_RETRIES + 1) for i in transient)
    expected_recoveries = [i for i in transient if 0 < len(plans[i]) <= TASK_RETRIES]
    attempts = sum(len(runs) for runs in RUN_COUNTS.values())
    succeeded = sum(completed[i] for i in transient)
    events = recovered_events(len(expected_recoveries))
    by_task = Counter(tuple(e["payload"]["survived"]) for e in events)
    print(
        f"\n{len(plans)} tasks, {attempts} attempts in {elapsed:.1f} s ({1000 * elapsed / attempts:.1f} ms each); "
        f"transient-only: {len(transient)} tasks, {injected} injected failures, "
        f"{succeeded}/{len(transient)} succeeded ({100 * succeeded / len(transient):.2f}%), "
        f"{len(expected_recoveries)} recovered after {sum(len(plans[i]) for i in expected_recoveries)} retries; "
        f"recovered events: {len(events)}, retries in them: {sum(e['payload']['retries'] for e in events)}; "
        f"never retried: {dict(Counter(k.value for k in never.values()))}, "
        f"their runs: {sum(len(RUN_COUNTS[i]) for i in never)}"
    )

    assert attempts >= 1_000
    assert succeeded / len(transient) >= 0.999
    for index, kind in never.items():
        assert RUN_COUNTS[index] == [1], f"{kind.value} task {index} ran {RUN_COUNTS[index]}"
        assert completed[index] is False
    for index in transient:
        assert RUN_COUNTS[index] == list(range(1, min(len(plans[index]), TASK_RETRIES) + 2))
    assert len(events) == len(expected_recoveries)
    assert sum(e["payload"]["retries"] for e in events) == sum(len(plans[i]) for i in expected_recoveries)
    assert by_task == Counter(tuple(type(e).__name__ for e in plans[i]) for i in expected_recoveries)
    assert {c for e in events for c in e["payload"]["classes"]} <= {FailureClass.TRANSIENT.value}
