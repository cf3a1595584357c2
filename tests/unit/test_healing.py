"""lakeops.healing: double on an out-of-memory kill, stop at the cap, one re-run per crash, remember upward."""

import pytest

from lakeops.healing import oom
from lakeops.healing.oom import Crash, GiveUp, NotOurs, Rerun

OOM = "Process exited with status code: 137. Process was killed, likely due to an out-of-memory (OOM) condition."


def crash(
    message: str | None = OOM,
    memory: int | None = 200,
    cap: int = 8192,
    tags: set[str] = frozenset(),
    run_id: str = "run-1",
) -> Crash:
    return Crash(run_id, message, memory, cap, frozenset(tags))


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (OOM, 137),
        ("Flow run infrastructure exited with non-zero status code 137. Process was killed", 137),
        ("Process exited with status code: -9. Process exited due to a SIGKILL signal.", -9),
        ("Process exited with status code: 1. Process exited with a general error.", 1),
        ("Flow run could not start: no such file", None),
        (None, None),
    ],
)
def test_the_exit_code_is_read_from_either_workers_crash_message(message: str | None, code: int | None) -> None:
    assert oom.exit_code(message) == code


def test_an_out_of_memory_kill_is_rerun_with_double_the_memory() -> None:
    decision = oom.decide(crash(memory=200))

    assert isinstance(decision, Rerun)
    assert decision.memory_mb == 400
    assert decision.idempotency_key == "lakeops-heal-run-1"
    assert {"lakeops-heal-root:run-1", "lakeops-heal-attempt:1", "lakeops-heals:run-1"} <= decision.tags


def test_a_sigkill_without_a_shell_counts_as_out_of_memory_too() -> None:
    decision = oom.decide(crash("Process exited with status code: -9. SIGKILL", memory=300))

    assert decision == Rerun(600, decision.tags, "lakeops-heal-run-1")


def test_doubling_stops_at_the_cap_and_the_cap_is_tried_once() -> None:
    assert oom.decide(crash(memory=300, cap=512)).memory_mb == 512
    gave_up = oom.decide(crash(memory=512, cap=512))

    assert isinstance(gave_up, GiveUp)
    assert gave_up.classification == "data-dependent"
    assert "512 MB" in gave_up.reason


@pytest.mark.parametrize(
    "message",
    [
        "Process exited with status code: 1. general error",
        "Flow run could not start: boom",
        None,
        "Process exited with status code: -15. SIGTERM",
    ],
)
def test_other_crashes_are_not_ours(message: str | None) -> None:
    assert isinstance(oom.decide(crash(message)), NotOurs)


def test_a_run_without_a_limit_has_nothing_to_double() -> None:
    decision = oom.decide(crash(memory=None))

    assert isinstance(decision, NotOurs) and "without a memory limit" in decision.reason


def test_a_chain_moves_one_attempt_on_and_keeps_its_root_and_other_tags() -> None:
    first = oom.decide(crash(memory=100, tags={"lakeops", "drill"}, run_id="root"))
    second = oom.decide(crash(memory=first.memory_mb, tags=set(first.tags), run_id="rerun-1"))

    assert second.memory_mb == 400
    assert second.tags == {
        "lakeops",
        "drill",
        "lakeops-heal-root:root",
        "lakeops-heal-attempt:2",
        "lakeops-heals:rerun-1",
    }
    assert second.idempotency_key != first.idempotency_key


def test_a_chain_always_ends_at_the_cap() -> None:
    decision, run, seen = oom.decide(crash(memory=1, cap=8192)), 0, []
    while isinstance(decision, Rerun):
        seen.append(decision.memory_mb)
        run += 1
        decision = oom.decide(
            crash(memory=decision.memory_mb, cap=8192, tags=set(decision.tags), run_id=f"rerun-{run}")
        )
    assert isinstance(decision, GiveUp)
    assert seen[-1] <= 8192 and len(seen) <= oom.MAX_ATTEMPTS


def test_the_same_crash_always_gets_the_same_rerun() -> None:
    assert oom.decide(crash()) == oom.decide(crash())


@pytest.mark.parametrize(
    ("current", "worked", "new"), [(None, 400, 400), (200, 400, 400), (800, 400, None), (400, 400, None)]
)
def test_the_size_that_worked_is_remembered_only_upward(current: int | None, worked: int, new: int | None) -> None:
    assert oom.remember(current, worked) == new


def test_the_alert_names_the_deployment_the_run_the_memory_and_the_cap() -> None:
    gave_up = crash(memory=512, cap=512, tags={"lakeops-heal-root:first", "lakeops-heal-attempt:1"})
    subject, body = oom.gave_up_alert(
        "memory-drill/lakeops", "brave-fox", "run-1", gave_up, oom.decide(gave_up), "http://ui/runs/flow-run/run-1"
    )

    assert "memory-drill/lakeops" in subject and "data-dependent" in subject
    for part in (
        "brave-fox",
        "run-1",
        "512 MB",
        "cap: 512 MB",
        "re-runs in this chain: 1",
        "first run first",
        "--job-variable memory=1024",
        "http://ui/runs/flow-run/run-1",
    ):
        assert part in body, part
