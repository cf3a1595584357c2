"""lakeops.healing: double on an out-of-memory kill, stop at the cap, one re-run per crash, remember upward."""

from dataclasses import replace

import pytest
from prefect.client.schemas.actions import VariableCreate
from prefect_aws.observers.diagnostics import diagnose_ecs_task

from lakeops.healing import oom, sizes
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


# On ECS: what prefect-aws 0.7's observer reports when a task stops (prefect_aws/observers/ecs.py).
ECS_CRASHED = "The following containers stopped with a non-zero exit code: ['prefect']"


def observer_line(*containers: dict[str, object]) -> str:
    """The observer's diagnosis, formatted as mark_runs_as_crashed logs it on the flow run."""
    detail = {"lastStatus": "STOPPED", "stopCode": "EssentialContainerExited", "containers": list(containers)}
    diagnosis = diagnose_ecs_task(detail)
    assert diagnosis is not None
    return f"{diagnosis.summary}: {diagnosis.detail} Resolution: {diagnosis.resolution}"


OOM_KILLED = {"name": "prefect", "exitCode": 137, "reason": "OutOfMemoryError: Container killed due to memory usage"}


def ecs_crash(
    memory: int = 2048, cpu: int = 512, cap: int = 8192, evidence: list[str] | None = None, message: str = ECS_CRASHED
) -> Crash:
    lines = (observer_line(OOM_KILLED),) if evidence is None else tuple(evidence)
    return Crash("run-1", message, memory, cap, cpu=cpu, fargate=True, evidence=lines)


def test_the_exit_code_of_an_ecs_task_is_read_from_the_observers_diagnosis_of_the_named_container() -> None:
    sidecar = {"name": "log-router", "exitCode": 1}
    assert oom.exit_code(ECS_CRASHED, (observer_line(OOM_KILLED),)) == 137
    assert oom.exit_code(ECS_CRASHED, (observer_line(sidecar, OOM_KILLED),)) == 137
    assert oom.exit_code(ECS_CRASHED, (observer_line({"name": "prefect", "exitCode": 1}, sidecar),)) == 1
    assert oom.exit_code(ECS_CRASHED, ()) is None  # the Crashed message itself names no code
    assert oom.exit_code(OOM, (observer_line({"name": "prefect", "exitCode": 1}),)) == 137  # a message's code wins


@pytest.mark.parametrize(
    ("cpu", "memories"),
    [
        (256, [512, 1024, 2048]),
        (512, [1024, 2048, 3072, 4096]),
        (1024, list(range(2048, 8193, 1024))),
        (2048, list(range(4096, 16385, 1024))),
        (4096, list(range(8192, 30721, 1024))),
        (8192, list(range(16384, 61441, 4096))),
        (16384, list(range(32768, 122881, 8192))),
    ],
)
def test_the_fargate_sizes_are_awss_table(cpu: int, memories: list[int]) -> None:
    assert list(sizes.FARGATE_SIZES[cpu]) == memories
    assert all(sizes.is_fargate_size(sizes.Size(m, cpu)) for m in memories)
    assert not sizes.is_fargate_size(sizes.Size(memories[0] - 512, cpu))
    assert not sizes.is_fargate_size(sizes.Size(memories[-1] + 1024, cpu))


def test_a_fargate_fit_is_the_smallest_size_with_that_memory_and_at_least_that_cpu() -> None:
    assert sizes.fargate_fit(3000) == sizes.Size(3072, 512)
    assert sizes.fargate_fit(3000, min_cpu=1024) == sizes.Size(3072, 1024)
    assert sizes.fargate_fit(17000) == sizes.Size(17408, 4096)
    assert sizes.fargate_fit(17000, min_cpu=8192) == sizes.Size(20480, 8192)  # 8192 cpu steps by 4096 MB
    assert sizes.fargate_fit(122881) is None
    assert sizes.fargate_sizes()[0] == sizes.Size(512, 256) and sizes.fargate_sizes()[-1] == sizes.Size(122880, 16384)


@pytest.mark.parametrize(
    ("cpu", "memory", "cap", "after"),
    [
        (256, 512, 8192, (256, 1024)),
        (256, 2048, 8192, (512, 4096)),  # 4096 MB needs 512 cpu
        (512, 2048, 8192, (512, 4096)),
        (512, 4096, 8192, (1024, 8192)),
        (1024, 8192, 16384, (2048, 16384)),
        (2048, 16384, 65536, (8192, 32768)),  # beyond 4096 cpu's 30720 MB
        (4096, 8192, 30720, (4096, 16384)),  # cpu is never lowered
        (512, 3000, 8192, (1024, 6144)),  # a size that is not Fargate's lands on one
        (512, 2048, 3500, (512, 3072)),  # the cap is not a Fargate size: the largest one within it
    ],
)
def test_an_ecs_task_stopped_out_of_memory_doubles_memory_within_fargate_sizes_up_to_the_cap(
    cpu: int, memory: int, cap: int, after: tuple[int, int]
) -> None:
    decision = oom.decide(ecs_crash(memory, cpu, cap))

    assert isinstance(decision, Rerun)
    assert (decision.cpu, decision.memory_mb) == after
    assert sizes.is_fargate_size(decision.size) and decision.memory_mb <= cap
    assert decision.size.job_variables() == {"memory": after[1], "cpu": after[0]}


def test_an_ecs_task_at_the_cap_or_with_no_fargate_size_left_below_it_is_given_up() -> None:
    at_cap = oom.decide(ecs_crash(memory=8192, cpu=1024, cap=8192))
    no_size_left = oom.decide(ecs_crash(memory=4096, cpu=512, cap=5000))

    assert isinstance(at_cap, GiveUp) and "the cap (8192 MB)" in at_cap.reason
    assert isinstance(no_size_left, GiveUp) and "no Fargate size above it" in no_size_left.reason


def test_the_ecs_out_of_memory_stop_reason_counts_without_an_exit_code() -> None:
    reason = "OutOfMemoryError: Container killed due to memory usage"
    decision = oom.decide(ecs_crash(evidence=[f"Task stopped: {reason}"]))

    assert isinstance(decision, Rerun) and decision.memory_mb == 4096
    assert isinstance(oom.decide(ecs_crash(evidence=[], message=f"ECS task stopped: {reason}")), Rerun)


@pytest.mark.parametrize(
    "evidence",
    [
        [],  # the observer's diagnosis never arrived: nothing says it ran out of memory
        [observer_line({"name": "prefect", "exitCode": 1})],
        [observer_line({"name": "prefect", "exitCode": 0}, {"name": "log-router", "exitCode": 137})],
    ],
)
def test_other_ecs_stops_are_not_ours(evidence: list[str]) -> None:
    assert isinstance(oom.decide(ecs_crash(evidence=evidence)), NotOurs)


def test_a_fargate_chain_always_ends_at_the_cap_on_valid_sizes() -> None:
    crash, seen = ecs_crash(memory=512, cpu=256, cap=30720), []
    decision = oom.decide(crash)
    while isinstance(decision, Rerun):
        seen.append((decision.cpu, decision.memory_mb))
        crash = replace(crash, run_id=f"rerun-{len(seen)}", memory_mb=decision.memory_mb, cpu=decision.cpu)
        crash = replace(crash, tags=decision.tags)
        decision = oom.decide(crash)
    assert isinstance(decision, GiveUp)
    assert seen == [(256, 1024), (256, 2048), (512, 4096), (1024, 8192), (2048, 16384), (4096, 30720)]


@pytest.mark.parametrize(
    ("current", "worked", "fargate", "new"),
    [
        ((None, None), (400, None), False, (400, None)),
        ((200, None), (400, None), False, (400, None)),
        ((800, None), (400, None), False, None),
        ((2048, 512), (4096, 512), True, (4096, 512)),
        ((2048, 512), (8192, 1024), True, (8192, 1024)),
        ((2048, 2048), (4096, 512), True, (4096, 2048)),  # a larger cpu stands
        ((2048, 8192), (8192, 1024), True, (16384, 8192)),  # and may need more memory than what worked
        ((16384, 2048), (8192, 1024), True, None),  # a larger memory stands
    ],
)
def test_a_deployment_is_raised_to_what_worked_never_lowered_on_valid_fargate_sizes(
    current: tuple, worked: tuple, fargate: bool, new: tuple | None
) -> None:
    raised = oom.raised(current[0], current[1], sizes.Size(*worked), fargate)
    assert raised == (sizes.Size(*new) if new else None)


def test_the_remembered_size_is_a_valid_prefect_variable_per_deployment_and_pool_kept_only_upward() -> None:
    remembered = oom.Remembered("build-layer/silver.flights", "lakeops-ecs", sizes.Size(4096, 512))
    VariableCreate(name=remembered.variable, value=remembered.value(), tags=[oom.REMEMBERED_TAG])  # Prefect's rules
    assert oom.Remembered.parse(remembered.value()) == remembered
    assert remembered.value() == {
        "deployment": "build-layer/silver.flights",
        "work_pool": "lakeops-ecs",
        "memory": 4096,
        "cpu": 512,
    }
    assert remembered.variable != oom.memory_variable("lakeops-local", "build-layer/silver.flights")
    assert remembered.variable != oom.memory_variable("lakeops-ecs", "build-layer/silver-flights")
    assert oom.Remembered.parse("4096") is None and oom.Remembered.parse({"memory": 1}) is None
    larger = replace(remembered, size=sizes.Size(8192, 1024))
    assert remembered.merged(None, fargate=True) == remembered
    assert remembered.merged(larger, fargate=True) is None
    assert larger.merged(remembered, fargate=True) == larger


def test_the_job_variables_in_effect_are_the_runs_then_the_deployments_then_the_pools() -> None:
    template = {"variables": {"properties": {"cpu": {"default": 1024}, "memory": {"default": 2048}, "image": {}}}}
    in_effect = oom.in_effect(template, {"memory": 4096, "cpu": None}, {"memory": 3072, "launch_type": "EC2"})

    assert in_effect == {"cpu": 1024, "memory": 4096, "launch_type": "EC2"}
    assert sizes.on_fargate("ecs", None) and sizes.on_fargate("ecs", "FARGATE_SPOT")
    assert not sizes.on_fargate("ecs", "EC2") and not sizes.on_fargate("process", None)


def test_the_fargate_alert_names_a_valid_size_to_run_it_with() -> None:
    crash = ecs_crash(memory=8192, cpu=1024, cap=8192)
    subject, body = oom.gave_up_alert("build-layer/silver.flights", "brave-fox", "run-1", crash, oom.decide(crash))

    assert "out of memory at the cap (8192 MB)" in subject
    assert "killed out of memory (exit 137)" in body
    assert "--job-variable memory=16384 --job-variable cpu=2048 --job-variable memory_cap=16384" in body
